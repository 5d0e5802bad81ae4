//! The build VM's network (issue 16, item 2): by default a step reaches an address outside
//! the build host, but nothing listening on the host's loopback, neither through the gateway
//! 10.0.2.2 nor through any other address of the guest's network.
//!
//! "Outside" is a network namespace this test makes, joined to the host by a veth pair
//! (host 10.231.0.1/24, namespace 10.231.0.2/24); the test's route for 10.0.2.0/24 also
//! points into it, so no probe of the guest can leave this machine whatever the host's
//! routes are. Nothing is sent to any other address. Needs root (CI runs as root).
#![cfg(feature = "qemu")]

mod qemu_support;

use std::io::Write as _;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use qemu_support::*;

const OUTSIDE: &str = "10.231.0.2";
const OUTSIDE_PORT: u16 = 8080;

/// The namespace, its veth pair and the listener in it; all removed when dropped, whatever
/// happened (deleting the namespace deletes the pair and, with it, the test's route).
struct OutsideNet {
    ns: String,
    veth: String,
    listener: Option<Child>,
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {}", args.join(" "));
}

impl OutsideNet {
    fn create() -> Self {
        let id = std::process::id();
        // The guard first: a failure half-way still removes what was made.
        let mut net = Self {
            ns: format!("ibtest-{id}"),
            veth: format!("ibt{}", id % 1_000_000),
            listener: None,
        };
        let peer = format!("{}n", net.veth);
        ip(&["netns", "add", &net.ns]);
        ip(&[
            "link", "add", &net.veth, "type", "veth", "peer", "name", &peer,
        ]);
        ip(&["link", "set", &peer, "netns", &net.ns]);
        ip(&["addr", "add", "10.231.0.1/24", "dev", &net.veth]);
        ip(&["link", "set", &net.veth, "up"]);
        ip(&[
            "-n",
            &net.ns,
            "addr",
            "add",
            &format!("{OUTSIDE}/24"),
            "dev",
            &peer,
        ]);
        ip(&["-n", &net.ns, "link", "set", &peer, "up"]);
        ip(&["-n", &net.ns, "link", "set", "lo", "up"]);
        // Every 10.0.2.x is local in the namespace (answered at once, by a reset), and the
        // host sends 10.0.2.0/24 there: a probe never leaves this machine.
        ip(&[
            "-n",
            &net.ns,
            "route",
            "add",
            "local",
            "10.0.2.0/24",
            "dev",
            "lo",
        ]);
        ip(&[
            "route",
            "add",
            "10.0.2.0/24",
            "via",
            OUTSIDE,
            "dev",
            &net.veth,
        ]);
        // Bounded: it exits by itself after ten minutes.
        let server = format!(
            "import socket\n\
             s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('{OUTSIDE}', {OUTSIDE_PORT})); s.listen(16); s.settimeout(600)\n\
             while True:\n    c, _ = s.accept(); c.sendall(b'OUTSIDE-OK\\n'); c.close()\n"
        );
        net.listener = Some(
            Command::new("ip")
                .args(["netns", "exec", &net.ns, "python3", "-c", &server])
                .stdin(Stdio::null())
                .spawn()
                .expect("start the outside listener"),
        );
        net
    }
}

impl Drop for OutsideNet {
    fn drop(&mut self) {
        if let Some(mut child) = self.listener.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .stderr(Stdio::null())
            .status();
    }
}

/// A listener on the host's 127.0.0.1 that counts and answers every connection.
fn host_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(b"HOST-LOOPBACK\n");
        }
    });
    (port, hits)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_step_reaches_the_outside_but_not_the_hosts_loopback() {
    let Some(f) = Fixture::gen1("isolated_network") else {
        return;
    };
    if euid() != 0 {
        eprintln!("skipped: making the test's network namespace needs root");
        return;
    }
    let net = OutsideNet::create();
    let (port, hits) = host_listener();
    let image = f.image.clone();
    let vm = f.boot_with(&f.host, &image, "net").await;

    let (code, out) = run_in(
        vm.as_ref(),
        &format!("nc -w 5 {OUTSIDE} {OUTSIDE_PORT} </dev/null"),
    )
    .await;
    assert!(
        code == 0 && out.contains("OUTSIDE-OK"),
        "the guest reaches an address outside the host ({code}): {out}"
    );
    // Every address of the guest's network but its own (10.0.2.15), at once, and the
    // uplink's gateway.
    let probe = format!(
        "i=1; while [ $i -le 254 ]; do \
           [ $i -ne 15 ] && (r=$(nc -w 3 10.0.2.$i {port} </dev/null 2>/dev/null); \
             [ -n \"$r\" ] && echo \"reached 10.0.2.$i: $r\") & \
           i=$((i+1)); done; \
         r=$(nc -w 3 10.41.0.2 {port} </dev/null 2>/dev/null); [ -n \"$r\" ] && echo \"reached 10.41.0.2: $r\"; \
         r=$(nc -w 3 127.0.0.1 {port} </dev/null 2>/dev/null); [ -n \"$r\" ] && echo \"reached 127.0.0.1: $r\"; \
         wait; echo probed"
    );
    let (_, out) = run_in(vm.as_ref(), &probe).await;
    assert!(out.contains("probed"), "the probe ran: {out}");
    assert!(
        !out.contains("reached"),
        "the guest reached the host's loopback: {out}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "connections from the guest reached the listener on the host's 127.0.0.1"
    );

    vm.destroy().await.unwrap();
    f.wait_for_no_leaks().await;
    drop(net);
}

fn euid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}
