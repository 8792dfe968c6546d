//! `pull --referrers` and `push --referrers` between go-containerregistry's
//! registry with the referrers API (`oracle-registry`, tests/oracle-registry)
//! and Debian's distribution 2.8 (no referrers API: the `sha256-<hex>`
//! fallback tags), with oras attaching and discovering; and referrers
//! lists that lie.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::registry::Registry as Distribution;
use crate::util::{OCI_INDEX, OCI_MANIFEST, Store, have_tool, sh, sha256};

const SIG: &str = "application/vnd.example.sig";
const SBOM: &str = "application/spdx+json";

/// go-containerregistry's registry with the referrers API, in memory, on
/// 127.0.0.1; killed when dropped, also when the test panics.
struct Ggcr {
    child: Child,
    /// `127.0.0.1:PORT`.
    host: String,
}

impl Ggcr {
    fn start() -> Ggcr {
        let mut child = Command::new("oracle-registry")
            .args(["serve", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run oracle-registry serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let mut reg = Ggcr {
            child,
            host: String::new(),
        };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => reg.host = addr,
            Err(e) => panic!("oracle-registry serve did not say its address: {e}"),
        }
        reg
    }
}

impl Drop for Ggcr {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn peers() -> bool {
    have_tool("oracle-registry") && have_tool("oras") && have_tool("docker-registry")
}

/// `oras ARGS --plain-http` in `cwd`, asserting success; stdout.
fn oras(st: &Store, cwd: &Path, args: &[&str]) -> String {
    sh(Command::new("oras")
        .current_dir(cwd)
        .args(args)
        .arg("--plain-http")
        .env("DOCKER_CONFIG", st.path("peer-home"))
        .stdin(Stdio::null()))
}

/// `oras ... --format json`, parsed.
fn oras_json(st: &Store, cwd: &Path, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["--format", "json"]);
    serde_json::from_str(&oras(st, cwd, &a)).expect("oras JSON")
}

/// The digests `oras discover` lists under `reference`, one level down,
/// with their own referrers' digests.
fn discovered(st: &Store, reference: &str, extra: &[&str]) -> Vec<(String, Vec<String>)> {
    let mut args = vec!["discover", reference];
    args.extend_from_slice(extra);
    let v = oras_json(st, st.tmp.path(), &args);
    let digests = |list: &Value| -> Vec<String> {
        list.as_array()
            .map(|l| {
                l.iter()
                    .map(|r| r["digest"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out: Vec<(String, Vec<String>)> = v["referrers"]
        .as_array()
        .unwrap_or_else(|| panic!("oras discover {reference}: {v}"))
        .iter()
        .map(|r| {
            (
                r["digest"].as_str().unwrap().to_string(),
                digests(&r["referrers"]),
            )
        })
        .collect();
    out.sort();
    out
}

/// An artifact pushed by oras, a signature attached to it and an SBOM
/// attached to the signature, on `host/app:1`: their digests.
fn attach_chain(st: &Store, host: &str) -> (String, String, String) {
    let work = st.path("peer-work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("app.bin"), crate::util::bytes(3000, 7)).unwrap();
    std::fs::write(work.join("app.sig"), b"signed: app\n").unwrap();
    std::fs::write(work.join("sbom.json"), br#"{"spdxVersion":"SPDX-2.3"}"#).unwrap();
    let app = oras_json(st, &work, &["push", &format!("{host}/app:1"), "app.bin"]);
    let sig = oras_json(
        st,
        &work,
        &[
            "attach",
            "--artifact-type",
            SIG,
            "--annotation",
            "org.example.signer=ci",
            &format!("{host}/app:1"),
            "app.sig",
        ],
    );
    let sig_digest = sig["digest"].as_str().unwrap().to_string();
    let sbom = oras_json(
        st,
        &work,
        &[
            "attach",
            "--artifact-type",
            SBOM,
            &format!("{host}/app@{sig_digest}"),
            "sbom.json",
        ],
    );
    (
        app["digest"].as_str().unwrap().to_string(),
        sig_digest,
        sbom["digest"].as_str().unwrap().to_string(),
    )
}

/// The untagged entries of the layout's `index.json`, by digest.
fn untagged(st: &Store) -> Vec<Value> {
    let mut out: Vec<Value> = st.index()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["annotations"]["org.opencontainers.image.ref.name"].is_null())
        .cloned()
        .collect();
    out.sort_by(|a, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
    out
}

/// The entries a layout holding `app:1` and its two referrers must have.
fn check_layout(st: &Store, app: &str, sig: &str, sbom: &str, ctx: &str) {
    st.ok(&["verify"]);
    let index = st.index();
    let tagged: Vec<&Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["annotations"]["org.opencontainers.image.ref.name"] == "app:1")
        .collect();
    assert_eq!(tagged.len(), 1, "{ctx}: {index}");
    assert_eq!(tagged[0]["digest"], app, "{ctx}");
    let entries = untagged(st);
    let mut want: Vec<(&str, &str)> = vec![(sig, SIG), (sbom, SBOM)];
    want.sort();
    let got: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["digest"].as_str().unwrap(),
                e["artifactType"].as_str().unwrap_or("<none>"),
            )
        })
        .collect();
    assert_eq!(got, want, "{ctx}: the referrers are untagged entries");
    let sig_entry = entries.iter().find(|e| e["digest"] == sig).unwrap();
    assert_eq!(
        sig_entry["annotations"]["org.example.signer"], "ci",
        "{ctx}: the manifest's annotations are in its entry"
    );
    assert_eq!(sig_entry["mediaType"], OCI_MANIFEST, "{ctx}");
    // The SBOM's layer is the file oras attached, byte for byte.
    let sbom_doc: Value = serde_json::from_slice(&std::fs::read(st.blob(sbom)).unwrap()).unwrap();
    assert_eq!(sbom_doc["subject"]["digest"], sig, "{ctx}");
    let layer = sbom_doc["layers"][0]["digest"].as_str().unwrap();
    assert_eq!(
        std::fs::read(st.blob(layer)).unwrap(),
        br#"{"spdxVersion":"SPDX-2.3"}"#,
        "{ctx}"
    );
    // ls lists them untagged; gc keeps all of it.
    let ls = st.json(&["ls"]);
    for d in [sig, sbom] {
        assert!(
            ls.as_array()
                .unwrap()
                .iter()
                .any(|r| r["digest"] == d && r["ref"].is_null()),
            "{ctx}: ls shows {d} untagged: {ls}"
        );
    }
    let blobs_before = crate::util::independent_check(&st.layout, &[], ctx).blobs;
    st.ok(&["gc", "--grace", "0s"]);
    let after = crate::util::independent_check(&st.layout, &[], ctx);
    assert_eq!(after.blobs, blobs_before, "{ctx}: gc removed nothing");
    assert_eq!(after.reachable, after.blobs, "{ctx}: every blob reachable");
    st.ok(&["verify"]);
}

/// oras pushes an artifact to go-containerregistry's registry (referrers
/// API) and attaches a signature to it and an SBOM to the signature; `pull
/// --referrers` takes all three, verified; `push --referrers` to
/// distribution 2.8 writes the fallback tags, which oras reads, and to
/// go-containerregistry's registry again, where oras discovers them through
/// the API; `pull --referrers` from 2.8 gets them back through the tags.
#[test]
fn referrers_go_through_the_api_and_the_fallback_tags() {
    if !peers() {
        return;
    }
    let s = Store::new();
    let ggcr = Ggcr::start();
    let (app, sig, sbom) = attach_chain(&s, &ggcr.host);
    // Without --referrers: as before, nothing but the artifact.
    let plain = Store::new();
    let out = plain.json(&["pull", &format!("{}/app:1", ggcr.host), "--plain-http"]);
    assert!(out.get("referrers").is_none(), "{out}");
    assert!(untagged(&plain).is_empty());
    let out = s.json(&[
        "pull",
        &format!("{}/app:1", ggcr.host),
        "--plain-http",
        "--referrers",
    ]);
    assert_eq!(out["digest"], app.as_str());
    assert_eq!(out["referrers"], 2, "{out}");
    check_layout(&s, &app, &sig, &sbom, "pulled from go-containerregistry");

    // To distribution 2.8: no OCI-Subject, so the fallback tags.
    let dist = Distribution::start(&s);
    let to = format!("{}/mirror/app:1", dist.host);
    let out = s.json(&["push", "app:1", &to, "--plain-http", "--referrers"]);
    assert_eq!(out["referrers"], 2, "{out}");
    assert_eq!(out["fallbackTags"], 2, "{out}");
    let tags = oras(
        &s,
        s.tmp.path(),
        &["repo", "tags", &format!("{}/mirror/app", dist.host)],
    );
    let hex = |d: &str| d.trim_start_matches("sha256:").to_string();
    for d in [&app, &sig] {
        assert!(
            tags.lines().any(|t| t == format!("sha256-{}", hex(d))),
            "a fallback tag for {d}: {tags}"
        );
    }
    let want = vec![(sig.clone(), vec![sbom.clone()])];
    assert_eq!(
        discovered(&s, &to, &["--distribution-spec", "v1.1-referrers-tag"]),
        want,
        "oras reads 2.8's fallback tags"
    );
    // Again: nothing new to add to the tags.
    let again = s.json(&["push", "app:1", &to, "--plain-http", "--referrers"]);
    assert_eq!(
        (again["referrers"].as_u64(), again["fallbackTags"].as_u64()),
        (Some(2), Some(0)),
        "{again}"
    );
    let tag_index: Value = serde_json::from_str(&oras(
        &s,
        s.tmp.path(),
        &[
            "manifest",
            "fetch",
            &format!("{}/mirror/app:sha256-{}", dist.host, hex(&app)),
        ],
    ))
    .unwrap();
    assert_eq!(tag_index["mediaType"], OCI_INDEX);
    assert_eq!(
        tag_index["manifests"].as_array().unwrap().len(),
        1,
        "{tag_index}"
    );
    assert_eq!(tag_index["manifests"][0]["digest"], sig.as_str());
    assert_eq!(tag_index["manifests"][0]["artifactType"], SIG);
    assert_eq!(
        tag_index["manifests"][0]["annotations"]["org.example.signer"],
        "ci"
    );

    // To go-containerregistry's registry again, another repository: its
    // referrers API lists them (it says no OCI-Subject either, so the
    // fallback tags are written there too, as the spec asks).
    let to_ggcr = format!("{}/copy/app:1", ggcr.host);
    let out = s.json(&["push", "app:1", &to_ggcr, "--plain-http", "--referrers"]);
    assert_eq!(out["referrers"], 2, "{out}");
    assert_eq!(out["fallbackTags"], 2, "{out}");
    assert_eq!(
        discovered(&s, &to_ggcr, &["--distribution-spec", "v1.1-referrers-api"]),
        want,
        "oras discovers them through go-containerregistry's referrers API"
    );

    // Back from 2.8 into a new layout, through the fallback tags.
    let back = Store::empty();
    let out = back.json(&["pull", &to, "--plain-http", "--referrers", "--ref", "app:1"]);
    assert_eq!(out["referrers"], 2, "{out}");
    assert_eq!(out["fallbackTags"], 2, "{out}");
    check_layout(
        &back,
        &app,
        &sig,
        &sbom,
        "pulled back from distribution 2.8",
    );
}

/// Fallback tags that lie, on `crane registry serve` (no referrers API, and
/// it takes any bytes under a tag): not an index, a size that does not
/// match, a manifest that refers to something else, a layer, too many
/// entries. Each pull is exit 2, tags nothing and leaves the layout
/// verifying; a push does not overwrite a fallback tag that is not an index.
#[test]
fn referrers_lists_that_lie_are_refused() {
    if !peers() || !have_tool("crane") {
        return;
    }
    let s = Store::new();
    let crane = crate::oras::Registry::start(&s);
    let (app, sig, _) = attach_chain(&s, &crane.host);
    let work = s.path("peer-work");
    let other = oras_json(
        &s,
        &work,
        &[
            "push",
            &format!("{}/app:other", crane.host),
            "app.bin:text/plain",
        ],
    );
    let other = other["digest"].as_str().unwrap().to_string();
    let size_of = |d: &str| -> usize {
        oras(
            &s,
            &work,
            &["manifest", "fetch", &format!("{}/app@{d}", crane.host)],
        )
        .trim_end()
        .len()
    };
    let (sig_size, other_size) = (size_of(&sig), size_of(&other));
    let app_doc: Value = serde_json::from_str(&oras(
        &s,
        &work,
        &["manifest", "fetch", &format!("{}/app@{app}", crane.host)],
    ))
    .unwrap();
    let layer = app_doc["layers"][0].clone();
    let index = |entries: Vec<Value>| {
        serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
        )
        .unwrap()
    };
    let entry =
        |d: &str, size: usize| json!({"mediaType": OCI_MANIFEST, "digest": d, "size": size});
    let tag = format!(
        "{}/app:sha256-{}",
        crane.host,
        app.trim_start_matches("sha256:")
    );
    // (what, media type, bytes, what the error says, whether it names the tag)
    let cases: Vec<(&str, &str, Vec<u8>, String, bool)> = vec![
        (
            "a manifest, not an index",
            OCI_MANIFEST,
            serde_json::to_vec(&app_doc).unwrap(),
            "is not an image index of referrers".into(),
            true,
        ),
        (
            "JSON that is no index",
            OCI_INDEX,
            format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}"}}"#).into_bytes(),
            "is not an image index of referrers".into(),
            true,
        ),
        (
            "a size that does not match",
            OCI_INDEX,
            index(vec![entry(&sig, sig_size + 1)]),
            format!(
                "{sig} is listed as a referrer of {app} of {} bytes, but it has {sig_size}",
                sig_size + 1
            ),
            false,
        ),
        (
            "a manifest with no subject",
            OCI_INDEX,
            index(vec![entry(&other, other_size)]),
            format!("{other} is listed as a referrer of {app}, but its subject is missing"),
            false,
        ),
        (
            "a layer",
            OCI_INDEX,
            index(vec![layer]),
            "not a manifest".into(),
            true,
        ),
        (
            "1001 entries",
            OCI_INDEX,
            index(vec![entry(&sig, sig_size); 1001]),
            "more than 1000 referrers".into(),
            true,
        ),
    ];
    let from = format!("{}/app:1", crane.host);
    for (what, media_type, bytes, says, names_tag) in &cases {
        std::fs::write(work.join("tag.json"), bytes).unwrap();
        oras(
            &s,
            &work,
            &[
                "manifest",
                "push",
                "--media-type",
                media_type,
                &tag,
                "tag.json",
            ],
        );
        let err = s.fails(2, &["pull", &from, "--plain-http", "--referrers"]);
        assert!(err.contains(says.as_str()), "{what}: {err}");
        let tag_name = format!("fallback tag sha256-{}", &app[7..]);
        assert_eq!(err.contains(&tag_name), *names_tag, "{what}: {err}");
        assert!(
            s.index()["manifests"].as_array().unwrap().is_empty(),
            "{what}: nothing tagged: {}",
            s.index()
        );
        s.ok(&["verify"]);
    }

    // Put right, the same pull takes app:1, the signature and its SBOM.
    let mut good = entry(&sig, sig_size);
    good["artifactType"] = json!(SIG);
    std::fs::write(work.join("tag.json"), index(vec![good])).unwrap();
    oras(
        &s,
        &work,
        &[
            "manifest",
            "push",
            "--media-type",
            OCI_INDEX,
            &tag,
            "tag.json",
        ],
    );
    let out = s.json(&["pull", &from, "--plain-http", "--referrers"]);
    assert_eq!(out["referrers"], 2, "{out}");
    s.ok(&["verify"]);

    // A push to a repository whose fallback tag of app:1 is not an index:
    // exit 2, and the tag is left as it was.
    let dst_tag = format!(
        "{}/dst/app:sha256-{}",
        crane.host,
        app.trim_start_matches("sha256:")
    );
    std::fs::write(work.join("tag.json"), serde_json::to_vec(&app_doc).unwrap()).unwrap();
    oras(
        &s,
        &work,
        &[
            "manifest",
            "push",
            "--media-type",
            OCI_MANIFEST,
            &dst_tag,
            "tag.json",
        ],
    );
    let to = format!("{}/dst/app:1", crane.host);
    let err = s.fails(2, &["push", "app:1", &to, "--plain-http", "--referrers"]);
    assert!(err.contains("is not an image index of referrers"), "{err}");
    let left = oras(&s, &work, &["manifest", "fetch", &dst_tag]);
    assert_eq!(
        sha256(left.trim_end().as_bytes()),
        sha256(&serde_json::to_vec(&app_doc).unwrap()),
        "the tag is as it was"
    );
}
