//! Channel, `select!` and `Mutex` churn between coroutines and plain
//! threads, and runtimes built and dropped with work still parked in them.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use gopark::chan::{self, Receiver, Sender};
use gopark::net::{TcpListener, TcpStream};
use gopark::Runtime;

use super::rng::{mix, Rng};
use super::stats::{is_fd_limit, Live, Role, C};
use super::{spawn_thread, Phase};

/// Producers per round: coroutines, then threads.
const PRODUCERS: (u64, u64) = (6, 2);
/// Consumers per round: coroutines, then threads.
const CONSUMERS: (u64, u64) = (3, 1);
/// Values each producer sends per round.
const VALUES: u64 = 100;

/// What a round sent and received: equal at its end, or values were lost
/// or duplicated.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    sent_sum: AtomicU64,
    received: AtomicU64,
    received_sum: AtomicU64,
    sections: AtomicU64,
}

/// The state a `Mutex` section checks: whoever holds the lock owns it.
#[derive(Default)]
struct Section {
    owner: u64,
    count: u64,
}

/// Rounds of channel churn on `rt` until the phase stops.
pub fn chan_driver(ph: Arc<Phase>, rt: Arc<Runtime>, mut rng: Rng) {
    while !ph.stopped() {
        round(&ph, &rt, &mut rng);
    }
}

/// One round: producers send numbered values on three channels (a
/// rendezvous one, a small buffered one, an unbounded one) by `select!`,
/// timed and plain sends; consumers take them by `select!` until all three
/// close. Every value must arrive once, in order per producer and channel;
/// every `Mutex` section must be exclusive.
fn round(ph: &Arc<Phase>, rt: &Runtime, rng: &mut Rng) {
    let (ta, ra) = chan::bounded::<u64>(0);
    let (tb, rb) = chan::bounded::<u64>(rng.range(1, 8) as usize);
    let (tc, rc) = chan::unbounded::<u64>();
    let tally = Arc::new(Tally::default());
    let mutex = Arc::new(gopark::sync::Mutex::new(Section::default()));
    let mut coroutines = Vec::new();
    let mut threads = Vec::new();
    for id in 1..=PRODUCERS.0 + PRODUCERS.1 {
        let txs = [ta.clone(), tb.clone(), tc.clone()];
        let (ph2, tally, mutex, mut r) = (ph.clone(), tally.clone(), mutex.clone(), rng.fork());
        if id <= PRODUCERS.0 {
            let live = Live::enter(Role::Churn);
            let h = gopark::Builder::new()
                .name("producer")
                .spawn_on(rt, move || {
                    let _live = live;
                    produce(&ph2, id, &txs, &mutex, &tally, &mut r, true)
                });
            match h {
                Ok(h) => coroutines.push(h),
                Err(e) => ph.stats.error("churn: spawn", &e, false),
            }
        } else {
            threads.push(spawn_thread("soak-producer", move || {
                produce(&ph2, id, &txs, &mutex, &tally, &mut r, false)
            }));
        }
    }
    drop((ta, tb, tc)); // the producers hold the only senders now
    for id in 1..=CONSUMERS.0 + CONSUMERS.1 {
        let rxs = [ra.clone(), rb.clone(), rc.clone()];
        let (ph2, tally, mutex, mut r) = (ph.clone(), tally.clone(), mutex.clone(), rng.fork());
        let me = 1000 + id;
        if id <= CONSUMERS.0 {
            let live = Live::enter(Role::Churn);
            let h = gopark::Builder::new()
                .name("consumer")
                .spawn_on(rt, move || {
                    let _live = live;
                    consume(&ph2, me, rxs, &mutex, &tally, &mut r, true)
                });
            match h {
                Ok(h) => coroutines.push(h),
                Err(e) => ph.stats.error("churn: spawn", &e, false),
            }
        } else {
            threads.push(spawn_thread("soak-consumer", move || {
                consume(&ph2, me, rxs, &mutex, &tally, &mut r, false)
            }));
        }
    }
    drop((ra, rb, rc));
    for h in coroutines {
        if h.join().is_err() {
            ph.stats.fail("churn: a coroutine panicked");
        }
    }
    for t in threads {
        if t.join().is_err() {
            ph.stats.fail("churn: a thread panicked");
        }
    }
    let t = &*tally;
    let (sent, received) = (t.sent.load(Relaxed), t.received.load(Relaxed));
    if sent != received || t.sent_sum.load(Relaxed) != t.received_sum.load(Relaxed) {
        ph.stats.fail(format!(
            "channels: {sent} values sent, {received} received (or their sums differ): lost or duplicated"
        ));
    }
    let sections = t.sections.load(Relaxed);
    let counted = mutex.lock().count;
    if counted != sections {
        ph.stats.fail(format!(
            "Mutex: {sections} sections ran, the guarded count says {counted}"
        ));
    }
    ph.stats.inc(C::ChurnRounds);
    ph.stats.add(C::ChurnValues, received);
}

/// Sends [`VALUES`] numbered values, each on a channel chosen at random.
fn produce(
    ph: &Phase,
    id: u64,
    txs: &[Sender<u64>; 3],
    mutex: &gopark::sync::Mutex<Section>,
    tally: &Tally,
    rng: &mut Rng,
    coroutine: bool,
) {
    for seq in 0..VALUES {
        let v = id << 32 | seq;
        // Ok(true): sent; Ok(false): timed out, try again; Err: closed.
        loop {
            let sent: Result<bool, ()> = match rng.below(4) {
                0 => gopark::select! {
                    send(txs[0], v) -> r => r.map(|()| true).map_err(drop),
                    send(txs[1], v) -> r => r.map(|()| true).map_err(drop),
                    default(Duration::from_millis(20)) => Ok(false),
                },
                1 => match txs[0].send_timeout(v, Duration::from_millis(20)) {
                    Ok(()) => Ok(true),
                    Err(chan::SendTimeoutError::Timeout(_)) => Ok(false),
                    Err(chan::SendTimeoutError::Disconnected(_)) => Err(()),
                },
                2 => txs[1].send(v).map(|()| true).map_err(drop),
                _ => txs[2].send(v).map(|()| true).map_err(drop),
            };
            match sent {
                Ok(true) => break,
                Ok(false) => continue,
                Err(()) => {
                    ph.stats
                        .fail("channels: a send failed: closed while its receivers lived");
                    return;
                }
            }
        }
        tally.sent.fetch_add(1, Relaxed);
        tally.sent_sum.fetch_add(mix(v), Relaxed);
        if rng.chance(1, 16) {
            section(ph, id, mutex, tally, rng, coroutine);
        }
    }
}

/// Receives by `select!` until all three channels are closed and drained;
/// checks that each producer's values come in order on each channel.
fn consume(
    ph: &Phase,
    me: u64,
    mut rxs: [Receiver<u64>; 3],
    mutex: &gopark::sync::Mutex<Section>,
    tally: &Tally,
    rng: &mut Rng,
    coroutine: bool,
) {
    let mut open = 3;
    let mut last: HashMap<(u64, usize), u64> = HashMap::new();
    while open > 0 {
        let got: Option<(usize, Option<u64>)> = gopark::select! {
            recv(rxs[0]) -> v => Some((0, v.ok())),
            recv(rxs[1]) -> v => Some((1, v.ok())),
            recv(rxs[2]) -> v => Some((2, v.ok())),
            default(Duration::from_millis(50)) => None,
        };
        match got {
            Some((ch, Some(v))) => {
                let (p, seq) = (v >> 32, v & 0xffff_ffff);
                if let Some(prev) = last.insert((p, ch), seq) {
                    if seq <= prev {
                        ph.stats.fail(format!(
                            "channels: producer {p}'s value {seq} after {prev} on channel {ch}"
                        ));
                    }
                }
                tally.received.fetch_add(1, Relaxed);
                tally.received_sum.fetch_add(mix(v), Relaxed);
            }
            Some((ch, None)) => {
                // Closed and drained: never ready again.
                rxs[ch] = chan::never();
                open -= 1;
            }
            None => {}
        }
        if rng.chance(1, 32) {
            section(ph, me, mutex, tally, rng, coroutine);
        }
    }
}

/// A `Mutex` section: mark the state ours, give others a chance to run
/// (yield, or now and then sleep, holding the lock), check it is still
/// ours. Threads use `lock_timeout` half the time.
fn section(
    ph: &Phase,
    me: u64,
    mutex: &gopark::sync::Mutex<Section>,
    tally: &Tally,
    rng: &mut Rng,
    coroutine: bool,
) {
    let mut g = if !coroutine && rng.chance(1, 2) {
        match mutex.lock_timeout(Duration::from_millis(2)) {
            Some(g) => g,
            None => return ph.stats.inc(C::MutexTimeouts),
        }
    } else {
        mutex.lock()
    };
    g.owner = me;
    g.count += 1;
    if rng.chance(1, 32) {
        gopark::time::sleep(Duration::from_micros(200));
    } else if coroutine {
        gopark::yield_now();
    } else {
        std::thread::yield_now();
    }
    if g.owner != me {
        ph.stats
            .fail(format!("Mutex: {} held it while {me} did", g.owner));
    }
    drop(g);
    tally.sections.fetch_add(1, Relaxed);
    ph.stats.inc(C::MutexLocks);
}

// ---- runtimes built and dropped --------------------------------------------

/// Builds small runtimes, runs a little work on each, and drops each with
/// coroutines still parked in it, until the phase stops.
pub fn rt_driver(ph: Arc<Phase>, mut rng: Rng) {
    while !ph.stopped() {
        rt_once(&ph, &mut rng);
        gopark::time::sleep(Duration::from_millis(rng.below(20)));
    }
}

/// Counts a churn runtime's coroutines (and the global live count).
struct Alive(Arc<AtomicUsize>, #[allow(dead_code)] Live);

impl Alive {
    fn new(n: &Arc<AtomicUsize>) -> Alive {
        n.fetch_add(1, Relaxed);
        Alive(n.clone(), Live::enter(Role::RtChurn))
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

fn rt_once(ph: &Phase, rng: &mut Rng) {
    let mut b = Runtime::builder()
        .workers(rng.range(1, 3) as usize)
        .name("churn")
        .stack_size((rng.range(16, 256) << 10) as usize);
    if rng.chance(1, 2) {
        b = b.stall_threshold(Duration::ZERO); // no monitor thread
    }
    let rt = match b.build() {
        Ok(rt) => rt,
        Err(e) => {
            let expected = ph.fd_limit_expected(&e);
            ph.stats.error("runtime churn: build", &e, expected);
            return;
        }
    };
    let alive = Arc::new(AtomicUsize::new(0));

    // Work that completes: pairs of coroutines ping-ponging.
    let pairs = rng.range(1, 8);
    let rounds = rng.range(1, 64);
    let mut hs = Vec::new();
    for _ in 0..pairs {
        let (t1, r1) = chan::bounded::<u64>(0);
        let (t2, r2) = chan::bounded::<u64>(0);
        let a = Alive::new(&alive);
        hs.push(rt.spawn(move || {
            let _a = a;
            (0..rounds).all(|i| t1.send(i).is_ok() && r2.recv() == Ok(i + 1))
        }));
        let a = Alive::new(&alive);
        hs.push(rt.spawn(move || {
            let _a = a;
            (0..rounds).all(|_| r1.recv().is_ok_and(|v| t2.send(v + 1).is_ok()))
        }));
    }
    if !hs.into_iter().all(|h| h.join().unwrap_or(false)) {
        ph.stats.fail("runtime churn: a ping-pong lost a value");
    }

    // A connection inside the runtime: one echoed message.
    let a = Alive::new(&alive);
    let size = rng.range(1, 64 << 10) as usize;
    let seed = rng.next_u64();
    let echoed = rt.run(move || {
        let _a = a;
        echo_once(size, seed)
    });
    if let Err(e) = echoed {
        let expected = ph.fd_limit_expected(&e);
        ph.stats.error("runtime churn: echo", &e, expected);
    }

    // Left parked when the runtime is dropped: each must be unwound.
    let (hold_tx, hold_rx) = chan::bounded::<()>(0);
    let held = Arc::new(gopark::sync::Mutex::new(()));
    let held_guard = held.lock();
    let (started_tx, started_rx) = chan::unbounded::<()>();
    let mut parked = 0;
    {
        let (a, s) = (Alive::new(&alive), started_tx.clone());
        rt.spawn(move || {
            let _a = a;
            let _ = s.send(());
            let _ = hold_rx.recv();
        });
        let (a, s) = (Alive::new(&alive), started_tx.clone());
        rt.spawn(move || {
            let _a = a;
            let _ = s.send(());
            gopark::time::sleep(Duration::from_secs(3600));
        });
        let (a, s, m) = (Alive::new(&alive), started_tx.clone(), held.clone());
        rt.spawn(move || {
            let _a = a;
            let _ = s.send(());
            drop(m.lock());
        });
        // A listener waiting in accept (nobody connects), and a stream
        // waiting in read (nothing is sent).
        let (a, s) = (Alive::new(&alive), started_tx.clone());
        rt.spawn(move || {
            let _a = a;
            let _ = s.send(());
            if let Ok(l) = TcpListener::bind("127.0.0.1:0") {
                let _ = l.accept();
            }
        });
        let (a, s) = (Alive::new(&alive), started_tx.clone());
        rt.spawn(move || {
            let _a = a;
            let _ = s.send(());
            if let Ok(l) = TcpListener::bind("127.0.0.1:0") {
                let c = l.local_addr().and_then(TcpStream::connect);
                if let (Ok(_c), Ok((peer, _))) = (c, l.accept()) {
                    let _ = (&peer).read(&mut [0u8; 1]);
                }
            }
        });
        parked += 5;
    }
    drop(started_tx);
    // Half the time wait until they have started (and so will park);
    // otherwise some are dropped before they start.
    if rng.chance(1, 2) {
        for _ in 0..parked {
            let _ = started_rx.recv_timeout(Duration::from_secs(5));
        }
    }
    drop(rt);
    drop(held_guard);
    drop(hold_tx);
    let left = alive.load(Relaxed);
    if left != 0 {
        ph.stats.fail(format!(
            "runtime churn: {left} coroutines still alive after the runtime was dropped"
        ));
    }
    ph.stats.inc(C::RtsBuilt);
    ph.stats.add(C::RtsCancelled, parked);
}

/// The longest a churn runtime's echo may wait for a read.
const ECHO_BOUND: Duration = Duration::from_secs(20);

/// One message through a connection made and accepted in the current
/// runtime, checked byte for byte.
fn echo_once(size: usize, seed: u64) -> std::io::Result<()> {
    let l = Arc::new(TcpListener::bind("127.0.0.1:0")?);
    let addr = l.local_addr()?;
    let l2 = l.clone();
    let server = gopark::spawn(move || -> std::io::Result<()> {
        let (mut c, _) = loop {
            match l2.accept() {
                Err(e) if is_fd_limit(&e) => gopark::time::sleep(Duration::from_millis(5)),
                r => break r?,
            }
        };
        c.set_read_timeout(Some(ECHO_BOUND))?;
        let mut buf = vec![0u8; size];
        c.read_exact(&mut buf)?;
        c.write_all(&buf)
    });
    let run = || -> std::io::Result<()> {
        let mut c = TcpStream::connect(addr)?;
        c.set_read_timeout(Some(ECHO_BOUND))?;
        let mut out = vec![0u8; size];
        super::rng::fill(seed, 0, &mut out);
        c.write_all(&out)?;
        let mut back = vec![0u8; size];
        c.read_exact(&mut back)?;
        if back != out {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "runtime churn: echo differs",
            ));
        }
        Ok(())
    };
    let client = run();
    if client.is_err() {
        let _ = l.close(); // the server may still wait in accept
    }
    let served = server
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("echo server panicked")));
    client.and(served)
}
