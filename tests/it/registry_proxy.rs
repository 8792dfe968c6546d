//! `push` through nginx in front of Debian's `docker-registry`, as fleets
//! run it, with `client_max_body_size 100m`: a 512 MiB blob goes up in
//! chunks under the limit, and a chunk size over it is met with 413 and
//! halved until it passes.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::registry::{Registry, forget_registry_blobs};
use crate::util::{Store, have_tool};

/// nginx on 127.0.0.1 proxying to `upstream` with a body limit; stopped
/// when dropped.
struct Nginx {
    child: Child,
    host: String,
}

impl Nginx {
    fn start(st: &Store, upstream: &str, body_limit: &str) -> Nginx {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = st.path(&format!("nginx-{port}"));
        std::fs::create_dir_all(dir.join("body")).unwrap();
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n\
               proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               server {{\n    listen 127.0.0.1:{port};\n    client_max_body_size {body_limit};\n\
                 location / {{\n      proxy_pass http://{upstream};\n      proxy_set_header Host $http_host;\n\
                   proxy_request_buffering off;\n      proxy_buffering off;\n      proxy_http_version 1.1;\n\
                   proxy_read_timeout 900;\n    }}\n  }}\n}}\n"
        );
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run nginx");
        let host = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&host).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on {host}: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx { child, host }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_512_mib_blob_pushes_through_a_proxy_with_a_100m_body_limit() {
    if !have_tool("docker-registry") || !have_tool("nginx") {
        return;
    }
    let s = Store::new();
    let disk = s.path("disk.img");
    let f = std::fs::File::create(&disk).unwrap();
    f.set_len(512 << 20).unwrap();
    drop(f);
    s.ok(&["add", "--ref", "big:1", disk.to_str().unwrap()]);
    let reg = Registry::start(&s);
    let proxy = Nginx::start(&s, &reg.host, "100m");
    // The default chunk (64 MiB) passes the limit.
    let out = s.json(&[
        "push",
        "big:1",
        &format!("{}/vms/big:1", proxy.host),
        "--plain-http",
    ]);
    assert_eq!(out["blobs"], 2, "{out}");
    // Each push below sends the blobs again (no mount from what the last
    // one sent).
    let forget = || forget_registry_blobs(&s);
    forget();
    // A chunk over the limit meets 413 and is halved until it passes.
    let out = s.json(&[
        "push",
        "big:1",
        &format!("{}/vms/big2:1", proxy.host),
        "--plain-http",
        "--chunk-size",
        "300MiB",
    ]);
    assert_eq!(out["blobs"], 2, "{out}");
    // A blob over the limit sent whole is met with 413 too, and goes in
    // chunks under it instead.
    forget();
    let out = s.json(&[
        "push",
        "big:1",
        &format!("{}/vms/big3:1", proxy.host),
        "--plain-http",
        "--chunk-size",
        "1GiB",
    ]);
    assert_eq!(out["blobs"], 2, "{out}");
    // Where the limit is under the smallest chunk, the error says what to do.
    let tight = Nginx::start(&s, &reg.host, "512k");
    forget();
    let err = s.fails(
        2,
        &[
            "push",
            "big:1",
            &format!("{}/vms/big4:1", tight.host),
            "--plain-http",
        ],
    );
    assert!(err.contains("413") && err.contains("--chunk-size"), "{err}");
    let back = Store::empty();
    let plan = back.json(&[
        "pull",
        &format!("{}/vms/big2:1", reg.host),
        "--plain-http",
        "--dry-run",
    ]);
    assert_eq!(plan["digest"], s.json(&["inspect", "big:1"])["digest"]);
}
