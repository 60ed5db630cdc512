//! Go's concurrent prime sieve: a chain of coroutines linked by unbuffered
//! channels, each filtering out the multiples of one prime.
//!
//! Run with: `cargo run --release --example prime_sieve -- 1000`

use gopark::chan::{self, Receiver, Sender};

/// Sends 2, 3, 4, ... until the receiver goes away.
fn generate(out: Sender<u64>) {
    for i in 2.. {
        if out.send(i).is_err() {
            return;
        }
    }
}

/// Copies values from `input` to `out`, dropping multiples of `prime`.
fn filter(input: Receiver<u64>, out: Sender<u64>, prime: u64) {
    for i in input {
        if i % prime != 0 && out.send(i).is_err() {
            return;
        }
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let primes = gopark::run(move || {
        let (tx, mut rx) = chan::bounded(0);
        gopark::go!(generate(tx));
        let mut primes = Vec::with_capacity(n);
        for _ in 0..n {
            let prime = rx.recv().expect("the sieve never closes");
            primes.push(prime);
            let (tx, next) = chan::bounded(0);
            gopark::go!(filter(rx, tx, prime));
            rx = next;
        }
        // Dropping the last receiver unwinds the chain: each filter's send
        // fails, it returns and drops its own receiver, and so on.
        primes
    });
    println!("{:?}", &primes[primes.len().saturating_sub(10)..]);
    println!(
        "{} primes, the last is {}",
        primes.len(),
        primes[primes.len() - 1]
    );
}
