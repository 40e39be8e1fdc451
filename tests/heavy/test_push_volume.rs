//! A large push the gateway refuses: git still shows the refusal in its own
//! words, because the gateway reads the rest of the pack before it answers
//! (git reads the answer only once it has sent everything).

use crate::common::{TestBroker, alice_with_a_write_clone, release_only_policy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_push_of_a_large_pack_is_told_why_not_cut_off() {
    let _turn = crate::common::MACHINE.lock().await;
    let b = TestBroker::start_with(&release_only_policy()).await;
    let (alice, repo) = alice_with_a_write_clone(&b).await;
    // Random bytes do not compress: a 32 MiB pack, far more than the socket buffers hold.
    let mut data = vec![0u8; 32 * 1024 * 1024];
    rand::fill(&mut data[..]);
    std::fs::write(repo.join("big.bin"), &data).unwrap();
    alice.git(&repo, &["add", "big.bin"]).success();
    alice.git(&repo, &["commit", "-qm", "big"]).success();
    let refused = alice.git(&repo, &["push", "origin", "main"]);
    assert!(
        refused.stderr.contains("[remote rejected] main -> main (jit: your grant allows refs/heads/release/* only)"),
        "{}",
        refused.stderr
    );
}
