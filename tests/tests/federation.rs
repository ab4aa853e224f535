//! The group scenario ([`kith_e2e::scenario`]) with real processes: two `kith-relay`
//! processes federating over SMTP; Alice has a device on each relay, Bob is on beta, Carol
//! on alpha, so every message crosses the federation.
use anyhow::Result;
use kith_core::account::Account;
use kith_crypto::identity::IdentityKey;
use kith_e2e::process::RelayProcess;
use kith_e2e::scenario::{self, Accounts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_users_four_devices_two_federating_relays() -> Result<()> {
    let mut alpha = RelayProcess::prepare("alpha.test", |_| {})?;
    let mut beta = RelayProcess::prepare("beta.test", |_| {})?;
    alpha.route_to(&beta)?;
    beta.route_to(&alpha)?;
    alpha.spawn()?;
    beta.spawn()?;
    let dirs = tempfile::tempdir()?;
    let dir = |name: &str| dirs.path().join(name);

    let alice1 = Account::create(&dir("alice1"), alpha.endpoint()?)?;
    // Alice's second device: same identity, its own address on the other relay.
    let identity = IdentityKey::from_bytes(&alice1.identity().to_bytes()[..])?;
    let alice2 = Account::create_device(&dir("alice2"), beta.endpoint()?, identity)?;
    let accounts = Accounts {
        alice1,
        alice2,
        bob: Account::create(&dir("bob"), beta.endpoint()?)?,
        bob_dir: dir("bob"),
        carol: Account::create(&dir("carol"), alpha.endpoint()?)?,
    };
    scenario::run(accounts).await?;
    alpha.stop()?;
    beta.stop()?;
    Ok(())
}
