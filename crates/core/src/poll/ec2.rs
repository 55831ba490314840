//! The EC2 waits' batchers: one `DescribeInstances` and one `DescribeImages` call per tick for all the
//! instances and AMIs a run waits for on one client (see [`batch`](super::batch)).

use super::batch::{Batcher, FetchFuture};
use crate::aws_err::AwsResultExt;
use aws_sdk_ec2::types::{Image, Instance};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The shortest time between two calls of one batcher for later looks: the poller's standard interval.
pub const TICK: Duration = Duration::from_secs(1);

/// The batched looks of one EC2 client (one region, one set of credentials).
#[derive(Clone)]
pub struct Ec2Waits {
    /// Instance waits (running, stopped, terminated): `DescribeInstances` for all their ids.
    pub instances: Batcher<Instance>,
    /// AMI waits (available, also region copies): `DescribeImages` for all their ids.
    pub images: Batcher<Image>,
}

impl Ec2Waits {
    /// Batchers sending their calls with `ec2`.
    pub fn new(ec2: &aws_sdk_ec2::Client) -> Self {
        let c = ec2.clone();
        let instances = Batcher::new(
            TICK,
            Arc::new(move |ids: Vec<String>| -> FetchFuture<Instance> {
                let c = c.clone();
                Box::pin(async move {
                    let out = c
                        .describe_instances()
                        .set_instance_ids(Some(ids))
                        .send()
                        .await
                        .aws("DescribeInstances")?;
                    Ok(out
                        .reservations()
                        .iter()
                        .flat_map(|r| r.instances())
                        .filter_map(|i| Some((i.instance_id()?.to_string(), i.clone())))
                        .collect::<HashMap<_, _>>())
                })
            }),
        );
        let c = ec2.clone();
        let images = Batcher::new(
            TICK,
            Arc::new(move |ids: Vec<String>| -> FetchFuture<Image> {
                let c = c.clone();
                Box::pin(async move {
                    let out = c
                        .describe_images()
                        .set_image_ids(Some(ids))
                        .send()
                        .await
                        .aws("DescribeImages")?;
                    Ok(out
                        .images()
                        .iter()
                        .filter_map(|i| Some((i.image_id()?.to_string(), i.clone())))
                        .collect::<HashMap<_, _>>())
                })
            }),
        );
        Ec2Waits { instances, images }
    }
}

/// The batchers of one run, one set per client. Builds that talk to EC2 the same way (same region,
/// endpoint and credentials: the same `key`) share one; builds with other credentials never do, since an
/// id of one account is not visible to another.
#[derive(Default)]
pub struct WaitRegistry {
    by_client: Mutex<HashMap<String, Ec2Waits>>,
}

impl WaitRegistry {
    /// A registry with no batchers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The batchers for the client `key` names; the first caller's `ec2` client sends their calls.
    pub fn ec2(&self, key: &str, ec2: &aws_sdk_ec2::Client) -> Ec2Waits {
        self.by_client
            .lock()
            .unwrap()
            .entry(key.to_string())
            .or_insert_with(|| Ec2Waits::new(ec2))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poll::{Poll, Poller};
    use aws_sdk_ec2::operation::describe_images::DescribeImagesOutput;
    use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
    use aws_sdk_ec2::types::{ImageState, InstanceState, InstanceStateName, Reservation};
    use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, create_mock_http_client, mock};
    use tokio_util::sync::CancellationToken;

    type Log = Arc<Mutex<Vec<Vec<String>>>>;

    /// An EC2 client of the SDK's test kind (built as `mock_client!` does, without the service crate's
    /// `test-util` feature, so the SDK is compiled once): DescribeInstances answers every id asked for as
    /// running, DescribeImages every id as available; each request's ids are logged.
    fn client(instances: Log, images: Log) -> aws_sdk_ec2::Client {
        let rules = [
            mock!(aws_sdk_ec2::Client::describe_instances).then_compute_output(move |req| {
                let ids = req.instance_ids().to_vec();
                instances.lock().unwrap().push(ids.clone());
                let mut r = Reservation::builder();
                for id in ids {
                    r = r.instances(
                        Instance::builder()
                            .instance_id(id)
                            .state(
                                InstanceState::builder()
                                    .name(InstanceStateName::Running)
                                    .build(),
                            )
                            .build(),
                    );
                }
                DescribeInstancesOutput::builder()
                    .reservations(r.build())
                    .build()
            }),
            mock!(aws_sdk_ec2::Client::describe_images).then_compute_output(move |req| {
                let ids = req.image_ids().to_vec();
                images.lock().unwrap().push(ids.clone());
                let mut out = DescribeImagesOutput::builder();
                for id in ids {
                    out = out.images(
                        Image::builder()
                            .image_id(id)
                            .state(ImageState::Available)
                            .build(),
                    );
                }
                out.build()
            }),
        ];
        let mut i = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for r in &rules {
            i = i.with_rule(r);
        }
        aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::Config::builder()
                .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
                .region(aws_sdk_ec2::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                    "AKIDTEST", "secret", None, None, "test",
                ))
                .retry_config(aws_sdk_ec2::config::retry::RetryConfig::disabled())
                .http_client(create_mock_http_client())
                .interceptor(i)
                .build(),
        )
    }

    #[tokio::test]
    async fn concurrent_instance_and_image_waits_send_one_describe_each() {
        let (instances, images): (Log, Log) = (Arc::default(), Arc::default());
        let registry = WaitRegistry::new();
        let ec2 = client(instances.clone(), images.clone());
        let mut waits = tokio::task::JoinSet::new();
        for n in 0..5 {
            // Each build asks the registry, as the bake steps do: the same key, the same batchers.
            let w = registry.ec2("us-east-1 default", &ec2);
            waits.spawn(async move {
                let id = format!("i-{n}");
                let got = Poller::instance_running()
                    .wait_batched(
                        "run",
                        &CancellationToken::new(),
                        |_, _| {},
                        &w.instances,
                        &id,
                        |i| match i.state().and_then(|s| s.name()) {
                            Some(InstanceStateName::Running) => Poll::Ready(i),
                            _ => Poll::Pending("pending".into()),
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(got.instance_id(), Some(id.as_str()));
                let ami = format!("ami-{n}");
                let img = Poller::image_available()
                    .wait_batched(
                        "ami",
                        &CancellationToken::new(),
                        |_, _| {},
                        &w.images,
                        &ami,
                        |i| match i.state() {
                            Some(ImageState::Available) => Poll::Ready(i),
                            _ => Poll::Pending("pending".into()),
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(img.image_id(), Some(ami.as_str()));
            });
        }
        while let Some(done) = waits.join_next().await {
            done.unwrap();
        }
        let sorted = |log: &Log| {
            let mut calls = log.lock().unwrap().clone();
            calls.iter_mut().for_each(|c| c.sort());
            calls
        };
        let want = |p: &str| vec![(0..5).map(|n| format!("{p}-{n}")).collect::<Vec<_>>()];
        assert_eq!(sorted(&instances), want("i"));
        assert_eq!(sorted(&images), want("ami"));
        // Another client key gets its own batchers (other credentials: other calls).
        let other = registry.ec2("us-east-1 other-account", &ec2);
        let same = registry.ec2("us-east-1 default", &ec2);
        assert!(!other.instances.same_as(&same.instances));
        assert!(
            same.instances
                .same_as(&registry.ec2("us-east-1 default", &ec2).instances)
        );
    }
}
