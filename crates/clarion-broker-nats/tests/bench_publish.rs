//! Publications per second with history, against a local `nats-server -js`
//! (file store). Ignored by default; run with
//! `cargo test -p clarion-broker-nats --test bench_publish -- --ignored --nocapture`.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clarion_hub::{Broker, HistoryOptions, NewPublication};
use clarion_wire::Data;

use support::NatsServer;

/// Which channel publisher `task` uses for its `i`th publication.
type Channels = fn(usize, usize) -> String;

fn options() -> Option<HistoryOptions> {
    Some(HistoryOptions {
        size: 100,
        ttl: Duration::from_secs(600),
        meta_ttl: Duration::from_secs(3600),
    })
}

/// `tasks` publishers, each publishing `per_task` times into
/// `channels(task, i)`; returns publications per second.
async fn rate(broker: Arc<dyn Broker>, tasks: usize, per_task: usize, channels: Channels) -> f64 {
    let data = Data::from_json(r#"{"text":"a short chat message","user":"u1"}"#).unwrap();
    let started = Instant::now();
    let mut running = Vec::new();
    for t in 0..tasks {
        let (broker, data) = (broker.clone(), data.clone());
        running.push(tokio::spawn(async move {
            for i in 0..per_task {
                let p = NewPublication::new(data.clone());
                broker.publish(&channels(t, i), p, options()).await.unwrap();
            }
        }));
    }
    for task in running {
        task.await.unwrap();
    }
    (tasks * per_task) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run on purpose"]
async fn publications_per_second_with_history() {
    let server = NatsServer::start();
    let broker: Arc<dyn Broker> = Arc::new(server.broker("bench").await);
    let one = |_: usize, _: usize| "bench:one".to_owned();
    let many = |t: usize, i: usize| format!("bench:many-{}", (t * 7919 + i) % 1000);
    rate(broker.clone(), 1, 200, one).await; // Warm-up.
    let cases: [(&str, usize, usize, Channels); 4] = [
        ("1 channel, 1 publisher", 1, 3000, one),
        ("1 channel, 8 publishers", 8, 400, one),
        ("1000 channels, 1 publisher", 1, 3000, many),
        ("1000 channels, 8 publishers", 8, 1000, many),
    ];
    for (name, tasks, per_task, channels) in cases {
        let r = rate(broker.clone(), tasks, per_task, channels).await;
        println!("{name:32} {r:8.0} publications/s");
    }
}
