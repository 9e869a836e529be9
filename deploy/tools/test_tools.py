"""Tests of the deployment checks (run by deploy/validate.sh: python -m unittest).

The Kubernetes tests render deploy/k8s with the kubectl named by $KUBECTL (validate.sh sets it;
without one they fail, they do not skip).
"""

# ruff: noqa: E501
from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import composecheck  # noqa: E402
import dockercheck  # noqa: E402
import envcheck  # noqa: E402
import envdoc  # noqa: E402
import k8scheck  # noqa: E402
import rustenv  # noqa: E402

FIXTURE = HERE / "testdata" / "envshapes"


class ExtractionTest(unittest.TestCase):
    def setUp(self):
        self.scan = rustenv.scan_dirs([FIXTURE], ROOT)

    def test_finds_every_shape_and_no_decoy(self):
        expected = set((FIXTURE / "expected.txt").read_text().split())
        got = set(self.scan.names())
        self.assertEqual(sorted(expected - got), [], "shapes not found")
        self.assertEqual(sorted(got - expected), [], "decoys reported as reads")

    def test_locations_point_at_the_call(self):
        where = {(r.var, Path(r.file).name, r.line) for r in self.scan.reads}
        self.assertIn(("FIX_NUMBER_HELPER", "helpers.rs", 13), where)
        self.assertIn(("FIX_SECRET_FILE", "helpers.rs", 9), where)

    def test_method_readers_of_an_env_value(self):
        via = {(r.var, r.via) for r in self.scan.reads}
        self.assertIn(("FIX_METHOD_SECRET", ".secret"), via)
        self.assertIn(("FIX_METHOD_SECRET_FILE", ".secret [file variant]"), via)
        self.assertIn(("FIX_METHOD_HELPER_FN", "snowflake"), via)
        where = {(r.var, Path(r.file).name, r.line) for r in self.scan.reads}
        self.assertIn(("FIX_METHOD_TURBOFISH", "env.rs", 50), where)
        self.assertIn(("FIX_PLAIN_TURBOFISH", "env.rs", 54), where)

    def test_computed_names_are_reported_as_dynamic(self):
        self.assertEqual([(Path(f).name, line) for f, line, _ in self.scan.dynamic], [("helpers.rs", 36)])

    def test_real_services_read_known_variables(self):
        dirs = sorted(p.parent for p in ROOT.glob("services/*/Cargo.toml"))
        names = set(rustenv.scan_dirs(dirs, ROOT).names())
        # flexcord-bus, case-service and twilio-api are committed and stable; the services read
        # theirs through flexcord_bus::config::Env methods (`env.secret("X")` also reads X_FILE).
        for v in ("NATS_URL", "NATS_TOKEN", "NATS_TOKEN_FILE", "INSTANCE_INDEX", "HOSTNAME", "BUS_ACK_WAIT_S",
                  "OTEL_EXPORTER_OTLP_ENDPOINT", "DATABASE_URL", "DATABASE_URL_FILE", "CASE_API_TOKEN_FILE",
                  "CASE_PAGE_LINK_TTL_SECS", "TWILIO_ACCOUNT_SID", "TWILIO_API_KEY_SECRET_FILE",
                  "TWILIO_MCS_BASE_URL", "TWILIO_WORKSPACE_SID", "WEBHOOK_PUBLIC_URL",
                  "WEBHOOK_STUDIO_BASIC_AUTH_FILE", "DISCORD_BOT_TOKEN_FILE", "DISCORD_CURSOR_FLUSH_MS"):
            self.assertIn(v, names)
        for decoy in ("DISCORD_IN", "FC_TEST_SECRET", "FC_TEST_PARSE_BAD", "CARGO_PKG_VERSION"):
            self.assertNotIn(decoy, names)

    def test_tokenizer_handles_lifetimes_chars_and_raw_strings(self):
        toks = rustenv.tokenize("fn f<'a>(x: &'a str) { let c = '\\''; let s = r#\"a\"b\"#; }")
        kinds = [(t.kind, t.text) for t in toks if t.kind in ("life", "char", "str")]
        self.assertEqual(kinds, [("life", "'a"), ("life", "'a"), ("char", "\\'"), ("str", 'a"b')])


DOC = """# Env
## Bus
Services: a, b

| Variable | Default | Secret | Description |
| --- | --- | --- | --- |
| `ONE` | `1` | no | One. |
| `TOKEN` | required | yes | A token. |

## Compose only
Services: none

| Variable | Default | Secret | Description |
| --- | --- | --- | --- |
| `IMAGE` | `x` | no | Image. |
"""


class EnvDocTest(unittest.TestCase):
    def test_parse_and_file_variants(self):
        sections = envdoc.parse(DOC)
        self.assertEqual([s.title for s in sections], ["Bus", "Compose only"])
        self.assertEqual(sections[0].services, ["a", "b"])
        self.assertEqual(sections[1].services, [])
        doc = envdoc.documented(sections)
        self.assertIn("TOKEN_FILE", doc)
        self.assertNotIn("ONE_FILE", doc)

    def test_render_uncomments_required_and_comments_defaults(self):
        text = envdoc.render(envdoc.parse(DOC))
        self.assertIn("\nTOKEN=\n", text)
        self.assertIn("\n# ONE=1\n", text)
        self.assertIn("[required; secret, or TOKEN_FILE]", text)

    def test_bad_rows_are_refused(self):
        with self.assertRaisesRegex(envdoc.DocError, "Secret must be"):
            envdoc.parse(DOC.replace("| no | One.", "| maybe | One."))
        with self.assertRaisesRegex(envdoc.DocError, "documented twice"):
            envdoc.parse(DOC.replace("`IMAGE`", "`ONE`"))
        with self.assertRaisesRegex(envdoc.DocError, "backticks"):
            envdoc.parse(DOC.replace("`ONE`", "ONE"))

    def test_repository_env_example_is_generated_from_environment_md(self):
        self.assertEqual((ROOT / ".env.example").read_text(), envdoc.render(envdoc.load()))


class EnvCheckTest(unittest.TestCase):
    def reads(self, *names):
        return [rustenv.Read(n, "services/x/src/config.rs", 7, "optional") for n in names]

    def test_undocumented_read_is_an_error_naming_it_and_where(self):
        errors, _ = envcheck.check(self.reads("ONE", "NEW_VAR"), envdoc.parse(DOC), {}, set(), None)
        self.assertEqual(len(errors), 1)
        self.assertIn("NEW_VAR", errors[0])
        self.assertIn("services/x/src/config.rs:7", errors[0])
        self.assertIn("| `NEW_VAR` |", errors[0])

    def test_an_undocumented_secret_pair_is_one_error(self):
        errors, _ = envcheck.check(self.reads("ONE", "NEW_KEY", "NEW_KEY_FILE"), envdoc.parse(DOC), {}, set(), None)
        self.assertEqual(len(errors), 1, errors)
        self.assertIn("NEW_KEY (and NEW_KEY_FILE)", errors[0])
        self.assertIn("| `NEW_KEY` | <default> | yes |", errors[0])

    def test_secret_file_variant_counts_as_documented(self):
        errors, _ = envcheck.check(self.reads("TOKEN", "TOKEN_FILE"), envdoc.parse(DOC), {}, set(), None)
        self.assertEqual(errors, [])

    def test_deployment_typos_and_required_values(self):
        k8s = {"base": {"a": {"ONE": "1", "TOKEN_FILE": "/run/x", "TYPO_VAR": "x"}},
               "prod": {"a": {"TOKEN": ""}, "b": {"ONE": "1"}}}
        errors, _ = envcheck.check(self.reads("ONE", "TOKEN"), envdoc.parse(DOC), k8s, {"prod"}, None)
        text = "\n".join(errors)
        self.assertIn("sets TYPO_VAR for a", text)
        self.assertIn("(prod): a needs TOKEN (required) but it is empty", text)
        self.assertIn("(prod): b needs TOKEN (required) but neither TOKEN nor TOKEN_FILE is set", text)
        self.assertEqual(len(errors), 3, text)

    def test_compose_interpolation_must_be_documented(self):
        errors, _ = envcheck.check(self.reads("ONE"), envdoc.parse(DOC), {}, set(), ({"a": {"ONE": "2"}}, {"IMAGE": 3, "UNKNOWN": 9}))
        self.assertEqual(len(errors), 1)
        self.assertIn("docker-compose.yml:9 interpolates ${UNKNOWN}", errors[0])

    def test_unread_documented_variables_are_warnings(self):
        errors, warnings = envcheck.check(self.reads("ONE"), envdoc.parse(DOC), {}, set(), None)
        self.assertEqual(errors, [])
        self.assertEqual(len(warnings), 1)
        self.assertIn("TOKEN", warnings[0])
        self.assertNotIn("IMAGE", warnings[0])  # compose-only rows are not expected in code


def render(path: str) -> list:
    kubectl = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if not kubectl:
        raise AssertionError("no kubectl: set KUBECTL (deploy/validate.sh does)")
    out = subprocess.run([kubectl, "kustomize", str(ROOT / path)], check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


class K8sCheckTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = render("deploy/k8s/base")
        tmpl = yaml.safe_load((ROOT / "deploy/k8s/secret.template.yaml").read_text())
        cls.keys = set(tmpl["stringData"])

    def find(self, docs, kind, name):
        return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)

    def container(self, docs, kind, name):
        return self.find(docs, kind, name)["spec"]["template"]["spec"]["containers"][0]

    def test_base_passes(self):
        self.assertEqual(k8scheck.check(self.base, self.keys), [])

    def test_scaling_without_instance_count_is_refused(self):
        docs = copy.deepcopy(self.base)
        self.find(docs, "StatefulSet", "bot-router")["spec"]["replicas"] = 4
        errs = k8scheck.check(docs, self.keys)
        self.assertEqual(len(errs), 1, errs)
        self.assertIn("INSTANCE_COUNT=2 but replicas=4", errs[0])

    def test_missing_probe_resources_and_pdb_are_refused(self):
        docs = copy.deepcopy(self.base)
        c = self.container(docs, "Deployment", "webhook-receiver")
        del c["readinessProbe"]
        del c["resources"]["requests"]["cpu"]
        docs = [d for d in docs if not (d["kind"] == "PodDisruptionBudget" and d["metadata"]["name"] == "twilio-egress")]
        text = "\n".join(k8scheck.check(docs, self.keys))
        self.assertIn("webhook-receiver container webhook-receiver: no readinessProbe", text)
        self.assertIn("webhook-receiver container webhook-receiver: no cpu request", text)
        self.assertIn("StatefulSet/twilio-egress: no PodDisruptionBudget", text)

    def test_probes_must_hit_the_admin_endpoints(self):
        docs = copy.deepcopy(self.base)
        self.container(docs, "StatefulSet", "case-service")["livenessProbe"]["httpGet"]["path"] = "/readyz"
        errs = k8scheck.check(docs, self.keys)
        self.assertEqual(len(errs), 1, errs)
        self.assertIn("livenessProbe must be GET /healthz on port 9085", errs[0])

    def test_public_url_must_match_the_ingress(self):
        docs = copy.deepcopy(self.base)
        cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("flexcord-config"))
        cm["data"]["WEBHOOK_PUBLIC_URL"] = "http://flexcord.example.com"
        errs = k8scheck.check(docs, self.keys)
        self.assertTrue(any("WEBHOOK_PUBLIC_URL='http://flexcord.example.com' must be https://" in e for e in errs), errs)

    def test_secret_files_need_a_mounted_key_in_the_template(self):
        docs = copy.deepcopy(self.base)
        self.assertEqual(k8scheck.check(docs, self.keys - {"DISCORD_BOT_TOKEN"})[:1],
                         ["Deployment/discord-ingress: mounts key DISCORD_BOT_TOKEN of Secret flexcord-secrets, missing from the Secret template"])
        c = self.container(docs, "Deployment", "discord-ingress")
        c["env"].append({"name": "TWILIO_AUTH_TOKEN_FILE", "value": "/run/secrets/flexcord/TWILIO_AUTH_TOKEN"})
        errs = k8scheck.check(docs, self.keys)
        self.assertTrue(any("has no item TWILIO_AUTH_TOKEN" in e for e in errs), errs)

    def test_nats_cluster_shape(self):
        docs = copy.deepcopy(self.base)
        self.find(docs, "StatefulSet", "nats")["spec"]["replicas"] = 1
        cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("flexcord-config"))
        cm["data"]["NATS_REPLICAS"] = "1"
        text = "\n".join(k8scheck.check(docs, self.keys))
        self.assertIn("StatefulSet/nats: 3 replicas expected, got 1", text)
        self.assertIn("NATS_REPLICAS must be 3", text)

    def test_gateway_holder_stays_single(self):
        docs = copy.deepcopy(self.base)
        self.find(docs, "Deployment", "discord-ingress")["spec"]["replicas"] = 2
        text = "\n".join(k8scheck.check(docs, self.keys))
        self.assertIn("exactly 1 replica", text)

    def test_postgres_component_lets_case_service_scale(self):
        docs = copy.deepcopy(self.base)
        sts = self.find(docs, "StatefulSet", "case-service")
        sts["spec"]["replicas"] = 2
        env = sts["spec"]["template"]["spec"]["containers"][0]["env"]
        next(e for e in env if e["name"] == "INSTANCE_COUNT")["value"] = "2"
        self.assertTrue(any("SQLite must run 1 replica" in e for e in k8scheck.check(docs, self.keys)))
        db = next(e for e in env if e["name"] == "DATABASE_URL")
        del db["value"]
        db["valueFrom"] = {"secretKeyRef": {"name": "flexcord-secrets", "key": "DATABASE_URL"}}
        self.assertEqual(k8scheck.check(docs, self.keys), [])


class ComposeCheckTest(unittest.TestCase):
    def setUp(self):
        self.data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())

    def test_repository_compose_passes(self):
        self.assertEqual(composecheck.check(self.data, ROOT), [])

    def test_missing_healthcheck_restart_and_env_file(self):
        s = self.data["services"]
        del s["bot-router"]["healthcheck"]
        s["nats"]["restart"] = "no"
        s["twilio-egress"]["env_file"] = "prod.env"
        text = "\n".join(composecheck.check(self.data, ROOT))
        self.assertIn("service bot-router: no healthcheck", text)
        self.assertIn("service nats: restart policy", text)
        self.assertIn("service twilio-egress: must read env_file: .env", text)

    def test_wrong_admin_port_and_undeclared_volume(self):
        s = self.data["services"]
        s["case-service"]["environment"]["ADMIN_ADDR"] = "0.0.0.0:9999"
        s["case-service"]["volumes"] = ["cases:/data"]
        text = "\n".join(composecheck.check(self.data, ROOT))
        self.assertIn("ADMIN_ADDR must end in :9085", text)
        self.assertIn("volume cases is not declared", text)


class DockerCheckTest(unittest.TestCase):
    def test_repository_dockerfile_passes(self):
        self.assertEqual(dockercheck.check(ROOT), [])

    def test_dockerignore_semantics(self):
        pats = ["**/target", ".env.*", "deploy", "!deploy/keep"]
        self.assertTrue(dockercheck.ignored("services/bus/target/debug/x", pats))
        self.assertTrue(dockercheck.ignored(".env.local", pats))
        self.assertTrue(dockercheck.ignored("deploy/k8s/base", pats))
        self.assertFalse(dockercheck.ignored("deploy/keep", pats))
        self.assertFalse(dockercheck.ignored("services/bus/src/lib.rs", pats))

    def test_instructions_join_continuations_and_skip_comments(self):
        ins = dockercheck.instructions("FROM a AS b\n# c\nRUN x \\\n  # inner comment\n  y\nUSER 1\n")
        self.assertEqual([(w, r) for _, w, r in ins], [("FROM", "a AS b"), ("RUN", "x    y"), ("USER", "1")])


if __name__ == "__main__":
    unittest.main()
