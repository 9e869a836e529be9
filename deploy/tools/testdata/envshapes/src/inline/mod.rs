use crate::config::{optional, parse_or};

pub fn read() {
    let _ = optional("FIX_IMPORTED_BARE");
    let _ = parse_or("FIX_IMPORTED_PARSE_OR", 5);
    let _ = crate::config::optional(crate::inline::consts::SHARED);
}

pub mod consts {
    pub const SHARED: &str = "FIX_CROSS_MODULE_CONST";
}
