//! `coroutine_local!`: one value per coroutine, dropped when it ends.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static DROPS: AtomicUsize = AtomicUsize::new(0);
/// Held by every test that counts `DROPS` (the test harness runs tests on
/// parallel threads; a concurrent test's drops would skew the count).
static COUNTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Counted(u32);
impl Drop for Counted {
    fn drop(&mut self) {
        // Runs on the coroutine's stack: it may even park.
        if gopark::current().is_some() {
            gopark::time::sleep(Duration::from_millis(1));
        }
        assert!(self.0 < 100);
        DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

gopark::coroutine_local! {
    static ID: Cell<u32> = Cell::new(0);
    static COUNTED: RefCell<Option<Counted>> = RefCell::new(None);
}

gopark::coroutine_local!(static INITS: Cell<u32> = { Cell::new(7) });

#[test]
fn each_coroutine_has_its_own_value_even_on_one_worker() {
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let hs: Vec<_> = (1..=50u32)
        .map(|i| {
            rt.spawn(move || {
                assert_eq!(ID.with(Cell::get), 0, "starts from the initialiser");
                ID.with(|c| c.set(i));
                for _ in 0..5 {
                    gopark::yield_now();
                    assert_eq!(ID.with(Cell::get), i);
                }
                i
            })
        })
        .collect();
    for (i, h) in (1..).zip(hs) {
        assert_eq!(h.join().unwrap(), i);
    }
}

#[test]
fn values_are_dropped_when_the_coroutine_ends() {
    let _serial = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let rt = gopark::Runtime::builder().workers(2).build().unwrap();
    let before = DROPS.load(Ordering::SeqCst);
    let hs: Vec<_> = (0..10)
        .map(|i| rt.spawn(move || COUNTED.with(|c| *c.borrow_mut() = Some(Counted(i)))))
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    // The drop happens before the join completes.
    assert_eq!(DROPS.load(Ordering::SeqCst) - before, 10);
}

#[test]
fn values_are_dropped_when_the_coroutine_panics() {
    let _serial = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let before = DROPS.load(Ordering::SeqCst);
    let h = gopark::spawn(|| {
        COUNTED.with(|c| *c.borrow_mut() = Some(Counted(1)));
        panic!("boom");
    });
    assert!(h.join().is_err());
    assert_eq!(DROPS.load(Ordering::SeqCst) - before, 1);
}

#[test]
fn a_panicking_drop_is_a_panic_of_the_coroutine() {
    struct Bad;
    impl Drop for Bad {
        fn drop(&mut self) {
            panic!("bad drop");
        }
    }
    gopark::coroutine_local!(static BAD: RefCell<Option<Bad>> = RefCell::new(None));
    let h = gopark::spawn(|| BAD.with(|b| *b.borrow_mut() = Some(Bad)));
    let p = h.join().unwrap_err();
    assert_eq!(p.downcast_ref::<&str>(), Some(&"bad drop"));
    // The runtime is fine.
    assert_eq!(gopark::spawn(|| 1).join().unwrap(), 1);
}

#[test]
fn plain_threads_have_their_own_value() {
    INITS.with(|c| c.set(1));
    let other = std::thread::spawn(|| INITS.with(Cell::get)).join().unwrap();
    assert_eq!(other, 7);
    assert_eq!(INITS.with(Cell::get), 1);
    assert_eq!(gopark::run(|| INITS.with(Cell::get)), 7);
}

#[test]
fn a_value_made_during_the_drop_of_another_is_dropped_too() {
    let _serial = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    struct Touch;
    impl Drop for Touch {
        fn drop(&mut self) {
            COUNTED.with(|c| *c.borrow_mut() = Some(Counted(9)));
        }
    }
    gopark::coroutine_local!(static TOUCH: RefCell<Option<Touch>> = RefCell::new(None));
    let before = DROPS.load(Ordering::SeqCst);
    gopark::spawn(|| TOUCH.with(|t| *t.borrow_mut() = Some(Touch)))
        .join()
        .unwrap();
    assert_eq!(DROPS.load(Ordering::SeqCst) - before, 1);
}
