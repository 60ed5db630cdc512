//! `go!` as Go's `go` statement.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn sum(v: Vec<u32>, extra: u32) -> u32 {
    v.iter().sum::<u32>() + extra
}

mod math {
    pub fn double(x: u64) -> u64 {
        2 * x
    }
}

struct Server {
    served: Arc<AtomicUsize>,
}

impl Server {
    fn serve(&self, conn: u32) -> u32 {
        self.served.fetch_add(1, Ordering::SeqCst);
        conn + 1
    }
    fn into_total(self, a: usize, b: usize) -> usize {
        self.served.load(Ordering::SeqCst) + a + b
    }
}

struct Holder {
    srv: Server,
}

#[test]
fn arguments_are_evaluated_in_the_caller_before_the_spawn() {
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let arg = |n: u32, o: &Arc<std::sync::Mutex<Vec<u32>>>| {
        o.lock().unwrap().push(n);
        n
    };
    let v = vec![1, 2];
    let h = gopark::go!(sum(v.clone(), arg(10, &order)));
    // The argument was evaluated before go! returned, by this thread.
    assert_eq!(*order.lock().unwrap(), [10]);
    assert_eq!(v, [1, 2]); // still usable
    assert_eq!(h.join().unwrap(), 13);
    assert_eq!(gopark::go!(math::double(21)).join().unwrap(), 42);
    // Trailing comma.
    assert_eq!(gopark::go!(sum(vec![], 1,)).join().unwrap(), 1);
}

#[test]
fn method_form_moves_the_receiver_in() {
    let served = Arc::new(AtomicUsize::new(0));
    let srv = Server {
        served: served.clone(),
    };
    let x = 5;
    assert_eq!(gopark::go!(srv.serve(x + 1)).join().unwrap(), 7);
    // `srv` was moved in; a by-value method works too.
    let srv2 = Server {
        served: served.clone(),
    };
    assert_eq!(gopark::go!(srv2.into_total(1, 2)).join().unwrap(), 4);
    // A field path as the receiver.
    let h = Holder {
        srv: Server {
            served: served.clone(),
        },
    };
    assert_eq!(gopark::go!(h.srv.serve(0)).join().unwrap(), 1);
    assert_eq!(served.load(Ordering::SeqCst), 2);
}

#[test]
fn closure_forms_still_work() {
    let v = [1, 2, 3];
    assert_eq!(gopark::go!(move || v.len()).join().unwrap(), 3);
    assert_eq!(gopark::go!(|| 9).join().unwrap(), 9);
    assert_eq!(
        gopark::go!(move || {
            let a = 1;
            a + 1
        })
        .join()
        .unwrap(),
        2
    );
}
