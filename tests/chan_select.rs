//! `select!`: fairness (Go's `TestSelectFairness`), each value sent by
//! exactly one arm (Go's test/chan/doubleselect.go), self-select (Go's
//! `TestSelfSelect`), timeouts racing sends, cancellation of losing arms,
//! and selects on plain threads. Our own code following those behaviours.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gopark::chan::{self, RecvError, SendError};
use gopark::select;

fn rt(workers: usize) -> gopark::Runtime {
    gopark::Runtime::builder().workers(workers).build().unwrap()
}

/// With three arms always ready, each is chosen about a third of the time.
#[test]
fn fairness_uniform_among_ready_arms() {
    const ROUNDS: usize = 6000;
    let (t0, r0) = chan::bounded::<()>(ROUNDS);
    let (t1, r1) = chan::bounded::<()>(ROUNDS);
    let (t2, r2) = chan::bounded::<()>(ROUNDS);
    for _ in 0..ROUNDS {
        t0.send(()).unwrap();
        t1.send(()).unwrap();
        t2.send(()).unwrap();
    }
    let mut counts = [0usize; 3];
    for _ in 0..ROUNDS {
        let i = select! {
            recv(r0) -> _v => 0,
            recv(r1) -> _v => 1,
            recv(r2) -> _v => 2,
        };
        counts[i] += 1;
    }
    // Expected 2000 each, sd ~36.5: allow about 6 sd.
    for c in counts {
        assert!((1780..=2220).contains(&c), "unfair: {counts:?}");
    }
    // And over send arms, in a coroutine.
    let counts = rt(1).run(|| {
        let (a, _ra) = chan::bounded::<u8>(ROUNDS);
        let (b, _rb) = chan::bounded::<u8>(ROUNDS);
        let mut counts = [0usize; 2];
        for _ in 0..ROUNDS {
            let i = select! {
                send(a, 1) -> r => { r.unwrap(); 0 }
                send(b, 2) -> r => { r.unwrap(); 1 }
            };
            counts[i] += 1;
        }
        counts
    });
    for c in counts {
        assert!((2760..=3240).contains(&c), "unfair sends: {counts:?}");
    }
}

/// doubleselect: a sender selects to send each counter value on one of four
/// rendezvous channels whose receivers multiplex into one; every value must
/// arrive exactly once (two arms completing at once would duplicate it).
#[test]
fn doubleselect_each_value_once() {
    let rt = rt(2);
    const N: usize = 20_000;
    let seen: Arc<Vec<AtomicU8>> = Arc::new((0..N).map(|_| AtomicU8::new(0)).collect());
    let chans: Vec<_> = (0..4).map(|_| chan::bounded::<usize>(0)).collect();
    let (mux_tx, mux_rx) = chan::bounded::<usize>(0);
    let mut hs = Vec::new();
    let mut threads = Vec::new();
    for (k, (_, rx)) in chans.iter().enumerate() {
        let (rx, mux) = (rx.clone(), mux_tx.clone());
        let work = move || {
            for v in rx.iter() {
                mux.send(v).unwrap();
            }
        };
        if k == 3 {
            threads.push(std::thread::spawn(work));
        } else {
            hs.push(rt.spawn(work));
        }
    }
    drop(mux_tx);
    let txs: Vec<_> = chans.iter().map(|(tx, _)| tx.clone()).collect();
    drop(chans);
    hs.push(rt.spawn(move || {
        let [c1, c2, c3, c4] = &txs[..] else {
            unreachable!()
        };
        for i in 0..N {
            select! {
                send(c1, i) -> r => r.unwrap(),
                send(c2, i) -> r => r.unwrap(),
                send(c3, i) -> r => r.unwrap(),
                send(c4, i) -> r => r.unwrap(),
            }
        }
    }));
    let s = seen.clone();
    let counter = rt.spawn(move || {
        for v in mux_rx.iter() {
            assert_eq!(s[v].fetch_add(1, Ordering::Relaxed), 0, "{v} twice");
        }
    });
    hs.into_iter().for_each(|h| h.join().unwrap());
    threads.into_iter().for_each(|h| h.join().unwrap());
    counter.join().unwrap();
    assert!(seen.iter().all(|c| c.load(Ordering::Relaxed) == 1));
}

/// Go's TestSelfSelect: two parties each select {send(c, me), recv(c)} on
/// one unbuffered channel; a select never pairs with itself, so whatever
/// is received came from the other party.
#[test]
fn self_select_never_pairs_with_itself() {
    let rt = rt(2);
    let (tx, rx) = chan::bounded::<usize>(0);
    let hs: Vec<_> = (0..2)
        .map(|me| {
            let (tx, rx) = (tx.clone(), rx.clone());
            rt.spawn(move || {
                for _ in 0..2000 {
                    select! {
                        send(tx, me) -> r => r.unwrap(),
                        recv(rx) -> v => assert_ne!(v.unwrap(), me, "paired with itself"),
                    }
                }
            })
        })
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
}

/// A select parked on several channels takes from exactly one; the others
/// are left with nothing consumed and no stale receiver behind.
#[test]
fn losing_arms_consume_nothing() {
    let rt = rt(2);
    rt.run(|| {
        for _ in 0..200 {
            let (t1, r1) = chan::bounded::<u32>(0);
            let (t2, r2) = chan::bounded::<u32>(0);
            let h = gopark::go!(move || {
                select! {
                    recv(r1) -> v => (1, v.unwrap(), r1, r2),
                    recv(r2) -> v => (2, v.unwrap(), r1, r2),
                }
            });
            gopark::time::sleep(Duration::from_micros(50));
            t1.send(10).unwrap();
            let (arm, v, _r1, _r2) = h.join().unwrap();
            assert_eq!((arm, v), (1, 10));
            // Nobody waits on r2 any more: a non-blocking send must fail.
            assert!(t2.try_send(20).unwrap_err().is_full());
        }
    });
}

/// default(timeout) racing sends: a value is either taken by the select or
/// kept by its sender (send_timeout returns it); never both, never lost.
#[test]
fn select_timeout_races_sends() {
    let rt = rt(2);
    const PER: usize = 4000;
    let (ta, ra) = chan::bounded::<usize>(0);
    let (tb, rb) = chan::bounded::<usize>(0);
    let seen: Arc<Vec<AtomicU8>> = Arc::new((0..2 * PER).map(|_| AtomicU8::new(0)).collect());
    let timeouts = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = [(ta, 0usize), (tb, PER)]
        .into_iter()
        .map(|(tx, base)| {
            let seen = seen.clone();
            rt.spawn(move || {
                for i in 0..PER {
                    if let Err(e) = tx.send_timeout(base + i, Duration::from_micros(25)) {
                        seen[e.into_inner()].fetch_add(1, Ordering::Relaxed);
                    }
                    if i % 32 == 0 {
                        // Pauses let the selector's timeout fire too.
                        gopark::time::sleep(Duration::from_micros(100));
                    }
                }
            })
        })
        .collect();
    let selector = {
        let (seen, timeouts) = (seen.clone(), timeouts.clone());
        rt.spawn(move || {
            // Go's idiom of setting a closed channel to nil: a closed arm
            // is always ready, so switch it to a channel that never is.
            let (_keep, never) = chan::bounded::<usize>(0);
            let (mut a_open, mut b_open) = (true, true);
            while a_open || b_open {
                let ra = if a_open { &ra } else { &never };
                let rb = if b_open { &rb } else { &never };
                select! {
                    recv(ra) -> v => match v {
                        Ok(v) => { seen[v].fetch_add(1, Ordering::Relaxed); }
                        Err(RecvError) => a_open = false,
                    },
                    recv(rb) -> v => match v {
                        Ok(v) => { seen[v].fetch_add(1, Ordering::Relaxed); }
                        Err(RecvError) => b_open = false,
                    },
                    default(Duration::from_micros(20)) => {
                        timeouts.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    senders.into_iter().for_each(|h| h.join().unwrap());
    selector.join().unwrap();
    for (v, c) in seen.iter().enumerate() {
        assert_eq!(c.load(Ordering::Relaxed), 1, "value {v}");
    }
    assert!(timeouts.load(Ordering::Relaxed) > 0);
}

/// `default` does not wait; `default(d)` waits about `d`; a closed channel
/// makes its arm ready; the same channel may appear twice.
#[test]
fn default_closed_and_duplicate_arms() {
    let (tx, rx) = chan::bounded::<u8>(1);
    let r = select! { recv(rx) -> _v => 0, default => 1 };
    assert_eq!(r, 1);
    let t = Instant::now();
    let r = select! { recv(rx) -> _v => 0, default(Duration::from_millis(5)) => 1 };
    assert_eq!(r, 1);
    assert!(t.elapsed() >= Duration::from_millis(5));

    let r = select! {
        recv(rx) -> v => v.unwrap(),
        recv(&rx) -> v => v.unwrap() + 100,
        send(tx, 3) -> res => { res.unwrap(); 7 }
    };
    assert_eq!(r, 7, "only the send was ready");
    let r = select! { recv(rx) -> v => v.unwrap(), recv(rx) -> v => v.unwrap() };
    assert_eq!(r, 3);

    drop(tx);
    let r = select! { recv(rx) -> v => v, default(Duration::from_secs(10)) => Ok(0) };
    assert_eq!(r, Err(RecvError), "closed channel is ready");
    let (tx2, rx2) = chan::bounded::<u8>(0);
    drop(rx2);
    let r = select! { send(tx2, 9) -> res => res };
    assert_eq!(r, Err(SendError(9)));
}

/// A plain thread blocks in a select until a coroutine sends, and a
/// coroutine's select is completed by a plain thread.
#[test]
fn select_between_threads_and_coroutines() {
    let rt = rt(2);
    let (t1, r1) = chan::bounded::<&str>(0);
    let (t2, r2) = chan::bounded::<&str>(0);
    let h = rt.spawn(move || {
        gopark::time::sleep(Duration::from_millis(2));
        t2.send("from coroutine").unwrap();
        let (t3, r3) = chan::bounded::<&str>(0);
        std::thread::spawn(move || t3.send("from thread").unwrap());
        select! { recv(r3) -> v => v.unwrap() }
    });
    let got = select! {
        recv(r1) -> v => v.unwrap(),
        recv(r2) -> v => v.unwrap(),
    };
    assert_eq!(got, "from coroutine");
    assert_eq!(h.join().unwrap(), "from thread");
    drop(t1);
}

/// The macro expands in this (user) crate against the sealed hidden API:
/// every arm form, blocking and not, on a thread and in a coroutine.
#[test]
fn select_macro_works_from_a_user_crate() {
    fn every_form() -> Vec<u32> {
        let mut got = Vec::new();
        let (tx, rx) = chan::bounded::<u32>(1);
        let (utx, urx) = chan::unbounded::<u32>();
        got.push(select! { recv(rx) -> _v => 0, default => 1 });
        got.push(select! { send(tx, 2) -> r => { r.unwrap(); 2 } });
        got.push(select! { recv(rx) -> v => v.unwrap() + 1, recv(urx) -> _v => 0 });
        got.push(select! {
            recv(urx) -> _v => 0,
            default(Duration::from_millis(1)) => 4,
        });
        let sender = std::thread::spawn(move || utx.send(5).unwrap());
        got.push(select! { recv(urx) -> v => v.unwrap(), recv(rx) -> _v => 0 });
        sender.join().unwrap();
        got
    }
    assert_eq!(every_form(), [1, 2, 3, 4, 5]);
    let rt = rt(1);
    assert_eq!(rt.run(every_form), [1, 2, 3, 4, 5]);
}

/// The macro never passes one arm twice, but the hidden API it expands to is
/// reachable from safe code: an arm given twice is linked once, and the
/// select completes and leaves no node behind (a second link would corrupt
/// the channel's queue).
#[test]
fn hidden_select_with_a_repeated_arm_is_sound() {
    use gopark::chan::__private::{select, Arm, RecvArm, SendArm, Timeout};

    fn run() {
        let (tx, rx) = chan::bounded::<u32>(0);
        let arm = RecvArm::new(&rx);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            tx.send(7).unwrap();
            tx
        });
        let i = select(&[&arm as &dyn Arm, &arm], Timeout::Never);
        assert!(i < 2);
        assert_eq!(arm.into_result(), Ok(7));
        let tx = t.join().unwrap();
        // The queue is intact: a timed-out repeated select leaves it empty.
        let arm = RecvArm::new(&rx);
        let i = select(
            &[&arm as &dyn Arm, &arm, &arm],
            Timeout::after(Duration::from_millis(2)),
        );
        assert_eq!(i, 3, "timed out");
        assert_eq!(
            tx.try_send(1),
            Err(chan::TrySendError::Full(1)),
            "no receiver left"
        );

        let arm = SendArm::new(&tx, 9);
        let r = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            rx.recv().unwrap()
        });
        let i = select(&[&arm as &dyn Arm, &arm], Timeout::Never);
        assert!(i < 2);
        assert_eq!(arm.into_result(), Ok(()));
        assert_eq!(r.join().unwrap(), 9);
    }
    run();
    let rt = rt(1);
    rt.run(run);
}

/// Selecting over a list of receivers built at run time: every value sent
/// on any of 64 channels is received exactly once, from a coroutine and from
/// a plain thread; a closed channel reports its index; `never()` disables a
/// case; the timeout form gives up.
#[test]
fn select_over_a_runtime_list_of_receivers() {
    use gopark::chan::{self, select_recv, select_recv_timeout, try_select_recv};
    use std::time::Duration;

    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    for on_thread in [false, true] {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..64).map(|_| chan::bounded::<usize>(0)).unzip();
        // The originals stay open until everything is received: a closed
        // channel is always ready (with Err), as in Go.
        let senders: Vec<_> = txs
            .iter()
            .enumerate()
            .map(|(i, tx)| {
                let tx = tx.clone();
                rt.spawn(move || tx.send(i).unwrap())
            })
            .collect();
        let collect = move || {
            let refs: Vec<_> = rxs.iter().collect();
            let mut seen = [false; 64];
            for _ in 0..64 {
                let (i, v) = select_recv(&refs);
                assert_eq!(v, Ok(i));
                assert!(!seen[i], "received twice from {i}");
                seen[i] = true;
            }
            seen.iter().all(|&s| s)
        };
        let all = if on_thread {
            std::thread::spawn(collect).join().unwrap()
        } else {
            rt.run(collect)
        };
        assert!(all);
        drop(txs);
        for s in senders {
            s.join().unwrap();
        }
    }

    let (tx, rx) = chan::bounded::<u8>(1);
    let never = chan::never::<u8>();
    assert_eq!(try_select_recv(&[&never, &rx]), None);
    tx.send(9).unwrap();
    assert_eq!(try_select_recv(&[&never, &rx]), Some((1, Ok(9))));
    drop(tx);
    assert_eq!(select_recv(&[&never, &rx]), (1, Err(chan::RecvError)));
    assert_eq!(
        select_recv_timeout(&[&never], Duration::from_millis(20)),
        None
    );
}
