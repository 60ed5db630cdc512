//! Timer channels: `after`, `tick`, `Timer`, `Ticker`, `after_func`, and
//! Go 1.23's Stop/Reset guarantees. The cases follow the spirit of Go's
//! `time/sleep_test.go` (TestAfterStop, TestTimerStopStress, testReset,
//! TestResetAfterStop, the synchronous-channel tests), rewritten for this
//! API.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gopark::select;
use gopark::time::{after, after_func, tick, Ticker, Timer};

const HOUR: Duration = Duration::from_secs(3600);
const MS: Duration = Duration::from_millis(1);

fn in_both(f: fn()) {
    // From a plain thread (timers on the default runtime) and from a coroutine.
    f();
    gopark::run(f);
}

#[test]
fn after_fires_once_after_its_duration() {
    in_both(|| {
        let start = Instant::now();
        let rx = after(Duration::from_millis(20));
        let at = rx.recv().unwrap();
        assert!(at >= start + Duration::from_millis(20));
        assert!(start.elapsed() >= Duration::from_millis(20));
        // One value only; the channel stays open until the timer is gone.
        assert!(rx.recv_timeout(Duration::from_millis(30)).is_err());
    });
}

#[test]
fn after_zero_is_ready_at_once() {
    let rx = after(Duration::ZERO);
    assert!(rx.try_recv().is_ok());
}

/// Go's TestAfterStop: a stopped timer never delivers, a stopped
/// after_func never runs, while an unstopped one does.
#[test]
fn stop_prevents_delivery_and_func() {
    in_both(|| {
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let f = after_func(Duration::from_millis(20), move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        let t = Timer::new(Duration::from_millis(20));
        assert!(f.stop());
        assert!(t.stop());
        let control = after(Duration::from_millis(40));
        select! {
            recv(t.receiver()) -> _ => panic!("a stopped timer fired"),
            recv(control) -> _ => {}
        }
        gopark::time::sleep(Duration::from_millis(20));
        assert_eq!(ran.load(Ordering::SeqCst), 0, "a stopped after_func ran");
        assert!(!f.stop());
        assert!(!t.stop());
    });
}

/// Go 1.23: a timer that fired but was not received is still pending, and
/// Stop discards its value.
#[test]
fn stop_after_fire_before_receive_discards_the_value() {
    in_both(|| {
        let t = Timer::new(MS);
        gopark::time::sleep(Duration::from_millis(50));
        assert!(t.stop(), "fired but unreceived counts as stopped");
        assert!(t.receiver().try_recv().is_err(), "stale value after stop");
        assert!(t
            .receiver()
            .recv_timeout(Duration::from_millis(30))
            .is_err());
    });
}

/// Reset after the timer fired (unreceived): the old value is never seen;
/// the new one comes after the new duration. Go's testReset /
/// TestResetAfterStop in spirit.
#[test]
fn reset_discards_the_stale_value() {
    in_both(|| {
        let t = Timer::new(MS);
        gopark::time::sleep(Duration::from_millis(50));
        let reset_at = Instant::now();
        assert!(t.reset(Duration::from_millis(100)));
        let got = t.receiver().recv().unwrap();
        assert!(
            got >= reset_at + Duration::from_millis(100),
            "received a value from before the reset"
        );
        // Received: not pending any more.
        assert!(!t.stop());
        assert!(!t.reset(HOUR));
        assert!(t.stop());
    });
}

/// Go's TestTimerStopStress, plus resets: many timers stopped or reset
/// concurrently with their firing never deliver a stale value.
#[test]
fn stop_and_reset_race_with_firing() {
    gopark::run(|| {
        let hs: Vec<_> = (0..200)
            .map(|i| {
                gopark::spawn(move || {
                    let t = Timer::new(Duration::from_micros(50 * (i % 7)));
                    // Spin a little so some timers fire before the call.
                    for _ in 0..(i % 5) {
                        gopark::yield_now();
                    }
                    if i % 2 == 0 {
                        t.stop();
                        assert!(t.receiver().try_recv().is_err());
                    } else {
                        let at = Instant::now();
                        t.reset(Duration::from_millis(2));
                        let v = t.receiver().recv().unwrap();
                        assert!(v >= at + Duration::from_millis(2), "stale value");
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
}

#[test]
fn timers_work_from_threads_and_select() {
    let t = Timer::new(Duration::from_millis(10));
    let (_tx, rx) = gopark::chan::bounded::<()>(0);
    let which = std::thread::spawn(move || {
        select! {
            recv(rx) -> _ => "rx",
            recv(t.receiver()) -> _ => "timer",
        }
    })
    .join()
    .unwrap();
    assert_eq!(which, "timer");
}

#[test]
fn after_func_runs_again_after_reset() {
    let (tx, rx) = gopark::chan::unbounded();
    let f = after_func(MS, move || tx.send(()).unwrap());
    rx.recv().unwrap();
    assert!(!f.reset(MS));
    rx.recv().unwrap();
    assert!(!f.reset(HOUR), "it had fired");
    assert!(f.stop(), "armed for an hour");
    assert!(rx.recv_timeout(Duration::from_millis(30)).is_err());
    // Its receiver is Go's nil channel: never ready.
    assert!(f.receiver().try_recv().is_err());
}

#[test]
fn ticker_ticks_stops_and_resets() {
    in_both(|| {
        let start = Instant::now();
        let t = Ticker::new(Duration::from_millis(10));
        for _ in 0..5 {
            t.receiver().recv().unwrap();
        }
        assert!(start.elapsed() >= Duration::from_millis(50));
        gopark::time::sleep(Duration::from_millis(25)); // a tick is waiting
        assert!(t.stop());
        assert!(t.receiver().try_recv().is_err(), "stale tick after stop");
        assert!(t
            .receiver()
            .recv_timeout(Duration::from_millis(40))
            .is_err());
        let at = Instant::now();
        t.reset(Duration::from_millis(5));
        let v = t.receiver().recv().unwrap();
        assert!(v >= at + Duration::from_millis(5));
        t.reset(HOUR);
        assert!(t
            .receiver()
            .recv_timeout(Duration::from_millis(30))
            .is_err());
    });
}

/// A slow receiver does not accumulate ticks: the channel holds one.
#[test]
fn ticker_drops_ticks_for_slow_receivers() {
    let t = Ticker::new(MS);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(t.receiver().len(), 1);
    t.receiver().recv().unwrap();
}

#[test]
fn tick_channel() {
    in_both(|| {
        let start = Instant::now();
        let rx = tick(Duration::from_millis(10));
        for _ in 0..3 {
            rx.recv().unwrap();
        }
        assert!(start.elapsed() >= Duration::from_millis(30));
    });
}

#[test]
#[should_panic(expected = "zero")]
fn ticker_zero_period_panics() {
    let _ = Ticker::new(Duration::ZERO);
}
