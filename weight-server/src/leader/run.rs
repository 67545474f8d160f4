//! The replica's tasks: the election loop (read the Lease, step, write,
//! every retry period) and the follower's poll of the leader's table.

use std::net::SocketAddr;
use std::sync::Arc;

use super::election::{Elector, Step};
use super::lease::{LeaseStore, Write, record_of};
use super::{LeaderArgs, Replica, Role, follow};
use crate::clock::SharedClock;
use crate::engine::Engine;
use crate::{Error, Result};

/// The running tasks of a replica; aborted on drop.
#[derive(Debug)]
pub struct Tasks {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.tasks.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

/// With `--leader-elect`: the replica (for the HTTP handlers) and its
/// running election and follower tasks. Without: `None`, a single replica.
pub fn start(
    args: &LeaderArgs,
    client: Option<kube::Client>,
    engine: Arc<Engine>,
    clock: SharedClock,
    listening: SocketAddr,
) -> Result<Option<(Arc<Replica>, Tasks)>> {
    if !args.leader_elect {
        return Ok(None);
    }
    let client =
        client.ok_or_else(|| Error::Config("--leader-elect needs --topology kube".into()))?;
    let timing = args.timing()?;
    let identity = args
        .pod_name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::Config("--leader-elect needs --pod-name (POD_NAME)".into()))?;
    let ip = args
        .pod_ip
        .ok_or_else(|| Error::Config("--leader-elect needs --pod-ip (POD_IP)".into()))?;
    let address = SocketAddr::new(ip, listening.port()).to_string();
    let replica = Arc::new(Replica::new(&identity, &address, clock.clone()));
    let store = LeaseStore::new(client, &args.lease_namespace, &args.lease_name);
    tracing::info!(%identity, %address, lease = %format!("{}/{}", args.lease_namespace, args.lease_name),
        lease_ms = timing.lease_ms, renew_deadline_ms = timing.renew_deadline_ms,
        retry_ms = timing.retry_ms, "leader election on");
    let elector = Elector::new(&identity, &address, timing);
    let tasks = vec![
        tokio::spawn(election_loop(
            replica.clone(),
            store,
            elector,
            engine,
            clock,
        )),
        tokio::spawn(follow::follow_loop(replica.clone(), args.follow_every())),
    ];
    Ok(Some((replica, Tasks { tasks })))
}

/// One round of the election; returns an error to log (the round failed).
pub async fn round(
    replica: &Replica,
    store: &LeaseStore,
    elector: &mut Elector,
    engine: &Engine,
    now_ms: u64,
) -> Result<()> {
    let lease = store.read().await?;
    let read = lease.as_ref().map(record_of);
    if let Some(r) = &read
        && r.holder != replica.identity()
    {
        replica.saw(r.version);
    }
    let (record, write) = match elector.step(now_ms, read.as_ref(), replica.highest()) {
        Step::Follow {
            holder, address, ..
        } => {
            if replica.role()
                != (Role::Follower {
                    holder: holder.clone(),
                    address: address.clone(),
                })
            {
                tracing::info!(leader = %holder, %address, "following");
            }
            elector.lost();
            replica.follow(&holder, &address);
            return Ok(());
        }
        Step::Create(r) => {
            let w = store.create(&r).await?;
            (r, w)
        }
        Step::Update(r) => match &lease {
            Some(l) => {
                let w = store.update(l, &r).await?;
                (r, w)
            }
            None => return Ok(()),
        },
    };
    match write {
        Write::Conflict => {
            tracing::debug!("lease written by another replica first");
            Ok(())
        }
        Write::Done => {
            elector.written(now_ms, &record);
            if replica.role() != Role::Leader {
                let first = replica.take_over(engine);
                tracing::info!(
                    identity = %replica.identity(),
                    transitions = record.transitions,
                    first_version = first,
                    "became the leader"
                );
            }
            Ok(())
        }
    }
}

async fn election_loop(
    replica: Arc<Replica>,
    store: LeaseStore,
    mut elector: Elector,
    engine: Arc<Engine>,
    clock: SharedClock,
) {
    let every = std::time::Duration::from_millis(elector.timing().retry_ms);
    loop {
        let now = clock.now_ms();
        if let Err(e) = round(&replica, &store, &mut elector, &engine, now).await {
            tracing::error!(error = %e, "leader election: the Lease could not be read or written");
        }
        if replica.role() == Role::Leader && elector.must_step_down(clock.now_ms()) {
            tracing::warn!("leader election: renew deadline passed; stepping down");
            elector.lost();
            replica.step_down();
        }
        tokio::time::sleep(every).await;
    }
}
