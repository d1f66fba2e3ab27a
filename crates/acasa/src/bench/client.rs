//! The gRPC client pieces the service benchmarks share: bearer tokens,
//! requests with a deadline, channels, and people registered with
//! programme-participation consent.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use acasa_proto::registry::v1::{self as reg, registry_service_client::RegistryServiceClient};
use anyhow::Context as _;
use tonic::{
    Request,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

use super::stats::{Rate, concurrently, rate};

pub(crate) fn bearer(token: &str) -> anyhow::Result<MetadataValue<Ascii>> {
    Ok(format!("Bearer {token}").parse()?)
}

pub(crate) fn req<T>(auth: &MetadataValue<Ascii>, msg: T, timeout: Duration) -> Request<T> {
    let mut r = Request::new(msg);
    r.set_timeout(timeout);
    r.metadata_mut().insert("authorization", auth.clone());
    r
}

pub(crate) async fn connect(addr: &str, n: usize, what: &str) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::new();
    for _ in 0..n {
        channels.push(
            Channel::from_shared(format!("http://{addr}"))?
                .connect()
                .await
                .with_context(|| format!("connecting to the {what} at {addr}"))?,
        );
    }
    Ok(channels)
}

/// Registers `n` people, `person(i)` the request for person `i` (`label`
/// names them in errors), and gives each programme-participation consent
/// (request ids `{consent_ids}-{i}`), as `auth` (a caseworker) with
/// `clients` in flight; the people, the largest registry position and the
/// rate.
pub(crate) async fn register_people<F>(
    auth: &MetadataValue<Ascii>,
    addr: &str,
    n: usize,
    clients: usize,
    label: &'static str,
    consent_ids: &str,
    person: F,
) -> anyhow::Result<(Vec<String>, u64, Rate)>
where
    F: Fn(usize) -> reg::RegisterPersonRequest + Send + Sync + 'static,
{
    let auth = Arc::new(auth.clone());
    let channels = Arc::new(connect(addr, 2, "registry").await?);
    let people = Arc::new(Mutex::new(vec![String::new(); n]));
    let last = Arc::new(AtomicU64::new(0));
    let timeout = Duration::from_secs(30);
    let start = Instant::now();
    {
        let (channels, auth, people, last) = (channels.clone(), auth.clone(), people.clone(), last.clone());
        concurrently(n, clients, move |i| {
            let (channels, auth, people, last) = (channels.clone(), auth.clone(), people.clone(), last.clone());
            let r = req(&auth, person(i), timeout);
            async move {
                let mut c = RegistryServiceClient::new(channels[i % channels.len()].clone());
                let a =
                    c.register_person(r).await.with_context(|| format!("registering a bench {label}"))?.into_inner();
                last.fetch_max(a.position, Ordering::Relaxed);
                people.lock().map_err(|_| anyhow::anyhow!("poisoned"))?[i] = a.person_id;
                Ok(())
            }
        })
        .await?;
    }
    let people: Arc<Vec<String>> = Arc::new(people.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone());
    {
        let (channels, auth, people, last, consent_ids) =
            (channels.clone(), auth.clone(), people.clone(), last.clone(), consent_ids.to_owned());
        concurrently(n, clients, move |i| {
            let (channels, auth, last) = (channels.clone(), auth.clone(), last.clone());
            let msg = reg::GiveConsentRequest {
                request_id: format!("{consent_ids}-{i}"),
                person_id: people[i].clone(),
                purpose: reg::ConsentPurpose::ProgrammeParticipation as i32,
                partner_id: String::new(),
                channel: reg::ConsentChannel::InPerson as i32,
            };
            let r = req(&auth, msg, timeout);
            async move {
                let mut c = RegistryServiceClient::new(channels[i % channels.len()].clone());
                let a = c.give_consent(r).await.context("giving bench consent")?.into_inner();
                last.fetch_max(a.position, Ordering::Relaxed);
                Ok(())
            }
        })
        .await?;
    }
    let setup = rate(2 * n, start.elapsed(), Vec::new());
    Ok((people.to_vec(), last.load(Ordering::Relaxed), setup))
}
