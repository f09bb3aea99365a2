//! Criterion benches of the random cut forest (100 trees of 256 points, Kinesis' settings)
//! on a one-column stream (a noisy daily pattern with spikes), and of hotspots over a
//! 1,000-row window.

use _core::anomaly::forest::{Forest, ForestParams};
use _core::anomaly::hotspots::{Hotspots, HotspotsParams};
use _core::rng::Rng;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const ROWS: usize = 20_000;

fn series() -> Vec<f64> {
    let mut rng = Rng::new(3);
    (0..ROWS)
        .map(|i| {
            let base = 100.0 + 30.0 * ((i % 1440) as f64 / 1440.0 * std::f64::consts::TAU).sin();
            let spike = if rng.uniform() < 0.002 { 200.0 } else { 0.0 };
            base + 5.0 * rng.uniform() + spike
        })
        .collect()
}

fn forest(shingle: usize) -> Forest {
    Forest::new(
        ForestParams {
            columns: 1,
            trees: 100,
            sample_size: 256,
            time_decay: 100_000,
            shingle_size: shingle,
            seed: 0,
        },
        0,
    )
    .expect("valid parameters")
}

fn bench(c: &mut Criterion) {
    let xs = series();
    let mut g = c.benchmark_group("random_cut_forest");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10);
    for shingle in [1, 8] {
        g.bench_function(
            format!("100 trees x 256, 1 column, shingle {shingle}"),
            |b| {
                b.iter(|| {
                    let mut f = forest(shingle);
                    f.update_rows(&xs, false).0.iter().sum::<f64>()
                })
            },
        );
    }
    g.bench_function("score only, warm forest", |b| {
        let mut f = forest(1);
        f.update_rows(&xs, false);
        b.iter(|| {
            let mut total = 0.0;
            for &x in &xs {
                total += f.score(&[x]);
            }
            total
        })
    });
    g.bench_function("with explanation", |b| {
        b.iter(|| {
            let mut f = forest(1);
            f.update_rows(&xs, true).0.iter().sum::<f64>()
        })
    });
    g.finish();
    let mut g = c.benchmark_group("hotspots");
    g.throughput(Throughput::Elements(2_000));
    g.sample_size(10);
    g.bench_function("window 1000, 2 columns", |b| {
        let mut rng = Rng::new(9);
        let pts: Vec<[f64; 2]> = (0..3_000)
            .map(|_| [rng.uniform() * 10.0, rng.uniform() * 10.0])
            .collect();
        b.iter(|| {
            let mut h = Hotspots::new(HotspotsParams {
                columns: 2,
                window_size: 1000,
                scan_radius: 0.2,
                min_points: 17,
            })
            .expect("valid parameters");
            let mut found = 0;
            for (i, p) in pts.iter().enumerate() {
                h.update(p);
                if i >= 1000 {
                    found += h.hotspots().len();
                }
            }
            found
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
