//! A whole build through the engine on a stock-style Debian 12 image (systemd, Debian's
//! cloud-init and OpenSSH; `scripts/build-stock-image.sh`, run by the test command, which sets
//! IMAGEBUILDER_STOCK_IMAGES), then the output checked offline and booted as a user would: the
//! build user's removal must hold with real shadow-utils and real cloud-init, not only with the
//! fixture's stand-ins. Its own file so it runs next to the fixture tests, not after them.
#![cfg(feature = "qemu")]

mod qemu_support;

use std::time::Instant;

use qemu_support::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_stock_debian_build_customizes_generalizes_and_captures() {
    let Some(f) = Fixture::stock_gen1("stock_full_build") else {
        return;
    };
    let started = Instant::now();
    // The image is what it claims: systemd as PID 1, Debian's cloud-init and OpenSSH.
    let stock = [
        "test \"$(cat /proc/1/comm)\" = systemd",
        "dpkg-query -W cloud-init openssh-server",
    ];
    full_build(&f, &stock, "10m").await;
    eprintln!("stock build and fresh boot: {:?}", started.elapsed());
}
