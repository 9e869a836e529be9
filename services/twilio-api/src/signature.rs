//! `X-Twilio-Signature`: computing and validating Twilio webhook signatures.
//!
//! Algorithm (twilio-python `twilio/request_validator.py`, twilio-go `client/request_validator.go`):
//! take the full URL Twilio called, append each POST parameter name followed by its values
//! (names sorted by byte order; a repeated name's values de-duplicated and sorted), HMAC-SHA1
//! the string keyed with the account auth token, base64 (standard, padded).
//! Validation also accepts the URL with its port removed or the scheme's default port added,
//! as the official SDKs do. JSON bodies are covered by a `bodySHA256` query parameter instead.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Header carrying the signature.
pub const HEADER: &str = "X-Twilio-Signature";

/// Computes the signature of a form-encoded request to `url` with `params`.
pub fn compute(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut data = String::with_capacity(url.len() + params.len() * 32);
    data.push_str(url);
    for name in names {
        let mut values: Vec<&str> = params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        values.sort_unstable();
        values.dedup();
        for v in values {
            data.push_str(name);
            data.push_str(v);
        }
    }
    sign(auth_token, &data)
}

/// Validates a form-encoded (or GET) webhook. `params` are the decoded POST parameters
/// (empty for GET, whose parameters live in `url`).
pub fn validate(auth_token: &str, url: &str, params: &[(String, String)], header: &str) -> bool {
    url_variants(url)
        .iter()
        .any(|u| constant_time_eq(&compute(auth_token, u, params), header))
}

/// Validates a JSON-bodied webhook: the URL must carry `bodySHA256=<hex sha256 of body>`
/// and the signature covers the URL alone.
pub fn validate_with_body(auth_token: &str, url: &str, body: &[u8], header: &str) -> bool {
    let Some(expected_hash) = query_param(url, "bodySHA256") else {
        return false;
    };
    let hash_ok = constant_time_eq(&body_sha256(body), &expected_hash.to_ascii_lowercase());
    let sig_ok = url_variants(url)
        .iter()
        .any(|u| constant_time_eq(&compute(auth_token, u, &[]), header));
    hash_ok & sig_ok
}

/// Lowercase hex SHA-256 of a body (the `bodySHA256` value).
pub fn body_sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

fn sign(auth_token: &str, data: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The URL as given, without its port, and with the scheme's default port (deduplicated).
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    if let Some(parts) = split_authority(url) {
        let without = format!("{}{}{}", parts.prefix, parts.host, parts.rest);
        let with = match (parts.port, default_port(parts.prefix)) {
            (Some(_), _) | (None, None) => None,
            (None, Some(p)) => Some(format!(
                "{}{}:{}{}",
                parts.prefix, parts.host, p, parts.rest
            )),
        };
        for v in [Some(without), with].into_iter().flatten() {
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

struct UrlParts<'a> {
    /// `scheme://` plus any userinfo.
    prefix: &'a str,
    host: &'a str,
    port: Option<&'a str>,
    /// Path, query and fragment, untouched.
    rest: &'a str,
}

/// Splits a URL textually (no re-encoding: Twilio signs the exact string).
fn split_authority(url: &str) -> Option<UrlParts<'_>> {
    let scheme_end = url.find("://")? + 3;
    let after = &url[scheme_end..];
    let auth_len = after.find(['/', '?', '#']).unwrap_or(after.len());
    let authority = &after[..auth_len];
    let rest = &after[auth_len..];
    let host_start = authority.rfind('@').map(|i| i + 1).unwrap_or(0);
    let hostport = &authority[host_start..];
    let prefix = &url[..scheme_end + host_start];
    // The port follows the last ':' unless that colon is inside an IPv6 literal.
    let (host, port) = match hostport.rfind(':') {
        Some(i) if !hostport[i..].contains(']') => {
            let p = &hostport[i + 1..];
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (&hostport[..i], Some(p))
        }
        _ => (hostport, None),
    };
    Some(UrlParts {
        prefix,
        host,
        port,
        rest,
    })
}

fn default_port(prefix: &str) -> Option<u16> {
    let lower = prefix.to_ascii_lowercase();
    if lower.starts_with("https://") {
        Some(443)
    } else if lower.starts_with("http://") {
        Some(80)
    } else {
        None
    }
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    let q = q.split('#').next().unwrap_or(q);
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    //! Vectors from the official SDK tests: twilio-python `tests/unit/test_request_validator.py`
    //! and twilio-go `client/request_validator_test.go` (token `12345`).
    use super::*;

    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const BODY: &str = "{\"property\": \"value\", \"boolean\": true}";
    const BODY_HASH: &str = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn call_params() -> Vec<(String, String)> {
        p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
        ])
    }

    #[test]
    fn python_compute_signature() {
        assert_eq!(
            compute(TOKEN, URL, &call_params()),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert!(validate(
            TOKEN,
            URL,
            &call_params(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn python_duplicate_keys_multidict() {
        let params = p(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
        ]);
        assert_eq!(compute(TOKEN, URL, &params), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
        // Duplicated values are de-duplicated before signing.
        let mut dup = params.clone();
        dup.push(("Digits".into(), "1234".into()));
        assert_eq!(compute(TOKEN, URL, &dup), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    }

    #[test]
    fn python_port_variants() {
        // https with :1234, signature made without the port.
        let u = URL.replace(".com", ".com:1234");
        assert!(validate(
            TOKEN,
            &u,
            &call_params(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        // http with :1234, signature made with it.
        let u = URL.replace(".com", ".com:1234").replace("https", "http");
        assert!(validate(
            TOKEN,
            &u,
            &call_params(),
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="
        ));
        // https without port, signature made with :443.
        assert!(validate(
            TOKEN,
            URL,
            &call_params(),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        ));
        assert_eq!(
            compute(
                TOKEN,
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                &call_params()
            ),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
        // http without port, signature made with :80.
        let u = URL.replace("https", "http");
        assert!(validate(
            TOKEN,
            &u,
            &call_params(),
            "0ZXoZLH/DfblKGATFgpif+LLRf4="
        ));
    }

    #[test]
    fn python_and_go_body_hash() {
        assert_eq!(body_sha256(BODY.as_bytes()), BODY_HASH);
        let u = format!("{URL}&bodySHA256={BODY_HASH}");
        assert!(validate_with_body(
            TOKEN,
            &u,
            BODY.as_bytes(),
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ));
        // twilio-go: URL with bodySHA256 as the only parameter.
        let u = format!("https://mycompany.com/myapp.php?bodySHA256={BODY_HASH}");
        assert!(validate_with_body(
            TOKEN,
            &u,
            BODY.as_bytes(),
            "y77kIzt2vzLz71DgmJGsen2scGs="
        ));
        // twilio-go: no bodySHA256 in the URL fails.
        assert!(!validate_with_body(
            TOKEN,
            URL,
            BODY.as_bytes(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn go_sorts_by_name_not_name_plus_value() {
        let mut params = call_params();
        params.push(("ReasonConferenceEnded".into(), "test".into()));
        params.push(("Reason".into(), "Participant".into()));
        assert_eq!(compute(TOKEN, URL, &params), "vOEb5UThFn24KEfnOFLQY2AE5FY=");
        let http = URL.replace("https", "http");
        assert_eq!(
            compute(TOKEN, &http, &params),
            "n2xBNyzSW7rfYStDtOFiFMv7qNo="
        );
        // Sorting name+value pairs would give the wrong signature from the twilio-go test.
        assert_ne!(compute(TOKEN, URL, &params), "95+Bu0JVPi0r/SsESZCVf0dWAjw=");
    }

    #[test]
    fn tampering_fails() {
        let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert!(!validate(TOKEN, URL, &call_params(), "WRONG SIGNATURE"));
        let mut params = call_params();
        params[1].1 = "9999".into();
        assert!(!validate(TOKEN, URL, &params, good));
        let mut params = call_params();
        params.push(("Extra".into(), "x".into()));
        assert!(!validate(TOKEN, URL, &params, good));
        assert!(!validate("54321", URL, &call_params(), good));
        assert!(!validate(
            TOKEN,
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &call_params(),
            good
        ));
        // JSON body tampered: hash no longer matches although the signature does.
        let u = format!("{URL}&bodySHA256={BODY_HASH}");
        assert!(!validate_with_body(
            TOKEN,
            &u,
            b"{\"property\": \"evil\"}",
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ));
    }

    #[test]
    fn url_variants_handle_userinfo_and_ipv6() {
        let v = url_variants("http://u:p@[::1]:8080/x?y=1");
        assert!(v.contains(&"http://u:p@[::1]/x?y=1".to_string()), "{v:?}");
        let v = url_variants("http://[::1]/x");
        assert!(v.contains(&"http://[::1]:80/x".to_string()), "{v:?}");
        let v = url_variants("http://127.0.0.1:4000/hook");
        assert_eq!(
            v,
            vec![
                "http://127.0.0.1:4000/hook".to_string(),
                "http://127.0.0.1/hook".to_string()
            ]
        );
    }
}
