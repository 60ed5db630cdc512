//! The coroutine dump: every wait named with its object and spawn site; the
//! deadlock report; the dump on a signal.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gopark::sync::{Barrier, Condvar, Mutex, Once, RwLock, Semaphore, WaitGroup};
use gopark::{Builder, CoroutineId, CoroutineInfo, CoroutineState, IoDirection, Runtime};

mod common;
use common::{child_within, in_child, stderr, stdout};

const LIMIT: Duration = Duration::from_secs(30);

/// Waits (up to 10 s) until every coroutine in `want` is in its state, and
/// returns the runtime's coroutines then.
fn wait_states(rt: &Runtime, want: &[(CoroutineId, CoroutineState)]) -> Vec<CoroutineInfo> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let all = rt.coroutines();
        let ok = want
            .iter()
            .all(|(id, st)| all.iter().any(|c| c.id() == *id && c.state() == *st));
        if ok {
            return all;
        }
        assert!(
            Instant::now() < end,
            "states not reached: want {want:?}\n{}",
            rt.dump()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn entry(dump: &str, id: CoroutineId) -> String {
    let head = format!("coroutine {id} ");
    let e = dump
        .split("\n\n")
        .find(|e| e.starts_with(&head))
        .unwrap_or_else(|| panic!("no entry for coroutine {id} in:\n{dump}"));
    format!("{}\n", e.trim_end_matches('\n'))
}

fn info(all: &[CoroutineInfo], id: CoroutineId) -> &CoroutineInfo {
    all.iter().find(|c| c.id() == id).unwrap()
}

/// Five common waits: a sleep, a channel receive, a contended
/// mutex (naming its holder), an accept, a join. Each entry has the name,
/// the reason and the spawn site (file and line of the spawn call).
#[test]
fn dump_names_each_wait_its_object_and_spawn_site() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let file = file!();

    // Each spawn call and its `line!()` share a line.
    let b = || Builder::new();
    let f = || gopark::time::sleep(Duration::from_secs(60));
    let (sleeper, l_sleep) = (b().name("sleeper").spawn_on(&rt, f).unwrap(), line!());

    let (tx, rx) = gopark::chan::bounded::<u32>(4);
    let f = move || rx.recv();
    let (receiver, l_recv) = (b().name("receiver").spawn_on(&rt, f).unwrap(), line!());

    let m = Arc::new(Mutex::new(0));
    let (hold_tx, hold_rx) = gopark::chan::bounded::<()>(0);
    let (locked_tx, locked_rx) = gopark::chan::bounded::<()>(1);
    let m1 = m.clone();
    let holder = Builder::new()
        .name("holder")
        .spawn_on(&rt, move || {
            let _g = m1.lock();
            locked_tx.send(()).unwrap();
            let _ = hold_rx.recv(); // holds the lock while parked
        })
        .unwrap();
    locked_rx.recv().unwrap();
    let m2 = m.clone();
    let f = move || *m2.lock() += 1;
    let (waiter, l_mutex) = (b().name("waiter").spawn_on(&rt, f).unwrap(), line!());

    let ln = rt.run(|| gopark::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let lfd = ln.as_raw_fd();
    let f = move || ln.accept().map(|_| ());
    let (acceptor, l_accept) = (b().name("acceptor").spawn_on(&rt, f).unwrap(), line!());

    let (target_tx, target_rx) = gopark::chan::bounded::<()>(0);
    let target = Builder::new()
        .name("target")
        .spawn_on(&rt, move || target_rx.recv())
        .unwrap();
    let target_id = target.coroutine().id();
    let f = move || target.join().is_ok();
    let (joiner, l_join) = (b().name("joiner").spawn_on(&rt, f).unwrap(), line!());

    let id = |h: &gopark::Coroutine| h.id();
    let (s_id, r_id, h_id, w_id, a_id, j_id) = (
        id(&sleeper.coroutine()),
        id(&receiver.coroutine()),
        id(&holder.coroutine()),
        id(&waiter.coroutine()),
        id(&acceptor.coroutine()),
        id(&joiner.coroutine()),
    );
    let all = wait_states(
        &rt,
        &[
            (s_id, CoroutineState::Sleep),
            (r_id, CoroutineState::ChanReceive),
            (h_id, CoroutineState::ChanReceive),
            (w_id, CoroutineState::Mutex),
            (a_id, CoroutineState::IoWait),
            (j_id, CoroutineState::Join),
            (target_id, CoroutineState::ChanReceive),
        ],
    );
    let dump = rt.dump();
    eprintln!("{dump}");

    // The records.
    let s = info(&all, s_id);
    assert_eq!(s.name(), Some("sleeper"));
    assert_eq!(
        (s.spawned_at().file(), s.spawned_at().line()),
        (file, l_sleep)
    );
    assert_eq!(s.parent(), None);
    assert!(s.worker().is_some_and(|w| w < 2));
    assert!(s.deadline().is_some_and(|d| d > Instant::now()));
    let r = info(&all, r_id);
    assert_eq!((r.channel_capacity(), r.channel_len()), (Some(4), Some(0)));
    assert_eq!(r.spawned_at().line(), l_recv);
    let w = info(&all, w_id);
    assert_eq!(w.holder(), Some(h_id));
    assert_eq!(w.spawned_at().line(), l_mutex);
    let a = info(&all, a_id);
    assert_eq!(a.fd(), Some(lfd));
    assert_eq!(a.io_direction(), Some(IoDirection::Read));
    assert_eq!(a.deadline(), None);
    assert_eq!(a.spawned_at().line(), l_accept);
    let j = info(&all, j_id);
    assert_eq!(j.joining(), Some(target_id));
    assert_eq!(j.spawned_at().line(), l_join);

    // The text: header, spawn site, object.
    let site = |l: u32| format!("    spawned at {file}:{l}:");
    let e = entry(&dump, s_id);
    assert!(
        e.starts_with(&format!("coroutine {s_id} 'sleeper' [sleep, ")),
        "{e}"
    );
    assert!(e.contains(&site(l_sleep)), "{e}");
    assert!(e.contains(" by a thread\n"), "{e}");
    assert!(e.contains("\n    worker "), "{e}");
    assert!(e.contains("\n    deadline in "), "{e}");
    let e = entry(&dump, r_id);
    assert!(
        e.starts_with(&format!("coroutine {r_id} 'receiver' [chan receive, ")),
        "{e}"
    );
    assert!(e.contains(&site(l_recv)), "{e}");
    assert!(e.contains(": capacity 4, length 0"), "{e}");
    let e = entry(&dump, w_id);
    assert!(
        e.starts_with(&format!("coroutine {w_id} 'waiter' [mutex, ")),
        "{e}"
    );
    assert!(e.contains(&site(l_mutex)), "{e}");
    assert!(
        e.contains(&format!(": held by coroutine {h_id} 'holder'\n")),
        "{e}"
    );
    let e = entry(&dump, a_id);
    assert!(
        e.starts_with(&format!("coroutine {a_id} 'acceptor' [IO wait, ")),
        "{e}"
    );
    assert!(e.contains(&site(l_accept)), "{e}");
    assert!(
        e.contains(&format!("    fd {lfd}: waiting to read, no deadline")),
        "{e}"
    );
    let e = entry(&dump, j_id);
    assert!(
        e.starts_with(&format!("coroutine {j_id} 'joiner' [join, ")),
        "{e}"
    );
    assert!(e.contains(&site(l_join)), "{e}");
    assert!(
        e.contains(&format!("    joining coroutine {target_id} 'target'")),
        "{e}"
    );

    // Release everything; the dump then empties.
    drop(tx);
    drop(hold_tx);
    drop(target_tx);
    assert!(receiver.join().unwrap().is_err());
    holder.join().unwrap();
    waiter.join().unwrap();
    assert!(joiner.join().unwrap());
    drop(sleeper);
    drop(acceptor);
}

/// Every other wait site records its reason and object.
#[test]
fn every_wait_reason_is_recorded() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let mut want = Vec::new();
    let mut spawn = |name: &str, st: CoroutineState, f: Box<dyn FnOnce() + Send>| {
        let h = Builder::new().name(name).spawn_on(&rt, f).unwrap();
        want.push((h.coroutine().id(), st));
        h
    };
    // A send on a full channel.
    let (tx, rx) = gopark::chan::bounded::<u8>(1);
    tx.send(1).unwrap();
    let tx2 = tx.clone();
    let send = spawn(
        "send",
        CoroutineState::ChanSend,
        Box::new(move || tx2.send(2).unwrap()),
    );
    // A select with no arm ready.
    let (_stx, srx) = gopark::chan::bounded::<u8>(0);
    let (_stx2, srx2) = gopark::chan::bounded::<u8>(0);
    let select = spawn(
        "select",
        CoroutineState::Select,
        Box::new(move || {
            gopark::select! {
                recv(srx) -> _ => {},
                recv(srx2) -> _ => {},
                default(Duration::from_secs(60)) => {},
            }
        }),
    );
    // A condvar wait.
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let p = pair.clone();
    let cv = spawn(
        "cv",
        CoroutineState::Condvar,
        Box::new(move || {
            let mut g = p.0.lock();
            while !*g {
                g = p.1.wait(g);
            }
        }),
    );
    // A waitgroup wait.
    let wg = WaitGroup::new();
    wg.add(2);
    let wg2 = wg.clone();
    let wgw = spawn(
        "wg",
        CoroutineState::WaitGroup,
        Box::new(move || wg2.wait()),
    );
    // A semaphore with no permit left.
    let sem = Arc::new(Semaphore::new(0));
    let s2 = sem.clone();
    let semw = spawn(
        "sem",
        CoroutineState::Semaphore,
        Box::new(move || drop(s2.acquire())),
    );
    // A barrier of 2.
    let bar = Arc::new(Barrier::new(2));
    let b2 = bar.clone();
    let barw = spawn(
        "bar",
        CoroutineState::Barrier,
        Box::new(move || {
            b2.wait();
        }),
    );
    // A writer waiting for a read lock held by a thread.
    let rw = Arc::new(RwLock::new(0));
    let read = rw.read();
    let rw2 = rw.clone();
    let rww = spawn(
        "rw",
        CoroutineState::RwLock,
        Box::new(move || *rw2.write() += 1),
    );
    // A park.
    let park = spawn("park", CoroutineState::Park, Box::new(gopark::park));
    // A blocking call.
    let (btx, brx) = std::sync::mpsc::channel::<()>();
    let blk = spawn(
        "blocking",
        CoroutineState::Blocking,
        Box::new(move || gopark::blocking(move || brx.recv().unwrap())),
    );
    // A once whose initialiser runs elsewhere.
    let once = Arc::new(Once::new());
    let (otx, orx) = gopark::chan::bounded::<()>(0);
    let o1 = once.clone();
    let init = Builder::new()
        .name("init")
        .spawn_on(&rt, move || o1.call_once(|| assert!(orx.recv().is_err())))
        .unwrap();
    let o2 = once.clone();
    let oncew = spawn(
        "once",
        CoroutineState::Once,
        Box::new(move || o2.call_once(|| {})),
    );

    let all = wait_states(&rt, &want);
    let dump = rt.dump();
    eprintln!("{dump}");
    let by = |h: &gopark::JoinHandle<()>| info(&all, h.coroutine().id()).clone();
    assert_eq!(by(&send).channel_len(), Some(1));
    assert_eq!(by(&send).channel_capacity(), Some(1));
    assert!(by(&select).deadline().is_some());
    assert!(entry(&dump, select.coroutine().id()).contains("    select over 2 arms\n"));
    assert_eq!(by(&wgw).count(), Some(2));
    assert_eq!(by(&semw).count(), Some(0));
    assert!(by(&cv).object().is_some());
    assert!(by(&barw).object().is_some());
    // The writer waits for a lock held by readers, not by a writer.
    assert_eq!(by(&rww).holder(), None);
    let e = entry(&dump, rww.coroutine().id());
    assert!(
        e.contains(": waiting to write, read-locked by 1 reader\n"),
        "{e}"
    );
    assert!(by(&park).deadline().is_none());
    assert!(by(&oncew).object().is_some());
    assert!(by(&blk).object().is_none());

    // Let everything finish.
    drop(rx);
    send.join().unwrap_err(); // the channel closed
    drop((_stx, _stx2));
    select.join().unwrap();
    *pair.0.lock() = true;
    pair.1.notify_all();
    cv.join().unwrap();
    wg.done();
    wg.done();
    wgw.join().unwrap();
    sem.add_permits(1);
    semw.join().unwrap();
    bar.wait();
    barw.join().unwrap();
    drop(read);
    rww.join().unwrap();
    park.coroutine().unpark();
    park.join().unwrap();
    btx.send(()).unwrap();
    blk.join().unwrap();
    drop(otx);
    init.join().unwrap();
    oncew.join().unwrap();
    assert!(rt.coroutines().is_empty(), "{}", rt.dump());
}

/// The time in state only grows while a coroutine stays parked (a lower
/// bound: the dump's clock is read after the wait below).
#[test]
fn time_in_state_covers_the_wait() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let (tx, rx) = gopark::chan::bounded::<()>(0);
    let h = rt.spawn(move || rx.recv());
    let id = h.coroutine().id();
    wait_states(&rt, &[(id, CoroutineState::ChanReceive)]);
    std::thread::sleep(Duration::from_millis(200));
    let all = rt.coroutines();
    let t = info(&all, id).time_in_state().unwrap();
    assert!(t >= Duration::from_millis(200), "{t:?}");
    // A coroutine dumping itself is running; the spawn site and the parent
    // of a child are recorded.
    let (me, child, parent) = rt.run(|| {
        let me = gopark::current().unwrap().id();
        let c = gopark::go!(|| gopark::park());
        let cid = c.coroutine().id();
        let all = gopark::coroutines();
        let parent = all.iter().find(|i| i.id() == cid).map(|i| i.parent());
        let mine = all.iter().find(|i| i.id() == me).map(|i| i.state());
        c.coroutine().unpark();
        c.join().unwrap();
        (mine, cid, parent)
    });
    let _ = child;
    assert_eq!(me, Some(CoroutineState::Running));
    // The child may not have started when the dump looked (then it is not
    // listed yet); if listed, its parent is the coroutine that spawned it.
    if let Some(p) = parent {
        assert!(p.is_some());
    }
    drop(tx);
    assert!(h.join().unwrap().is_err());
}

/// Sends stderr (fd 2) to a file, and returns a function that waits until
/// that file contains every string of `want` (up to 10 s), then returns
/// its text (also written to stdout, where the parent reads it).
fn capture_stderr(tag: &str) -> impl Fn(&[&str]) -> String {
    let path = std::env::temp_dir().join(format!("gopark-{tag}-{}.txt", std::process::id()));
    let f = std::fs::File::create(&path).unwrap();
    // SAFETY: dup2 onto fd 2 with a descriptor we own.
    assert!(unsafe { libc::dup2(f.as_raw_fd(), 2) } == 2);
    move |want| {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&path).unwrap();
            if want.iter().all(|w| text.contains(w)) || Instant::now() > end {
                print!("{text}");
                let _ = std::fs::remove_file(&path);
                return text;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Two coroutines that each hold the mutex the other wants: after a
/// second, the report and the dump (naming both holders) are on stderr,
/// once.
#[test]
fn deadlocked_coroutines_are_reported() {
    const NAME: &str = "deadlocked_coroutines_are_reported";
    if in_child(NAME) {
        let wait = capture_stderr("deadlock");
        let rt = Runtime::builder().workers(2).build().unwrap();
        let (m1, m2) = (Arc::new(Mutex::new(())), Arc::new(Mutex::new(())));
        let bar = Arc::new(Barrier::new(2));
        let (a1, a2, ab) = (m1.clone(), m2.clone(), bar.clone());
        let a = Builder::new()
            .name("a")
            .spawn_on(&rt, move || {
                let _g = a1.lock();
                ab.wait();
                drop(a2.lock());
            })
            .unwrap();
        let b = Builder::new()
            .name("b")
            .spawn_on(&rt, move || {
                let _g = m2.lock();
                bar.wait();
                drop(m1.lock());
            })
            .unwrap();
        println!("A={} B={}", a.coroutine().id(), b.coroutine().id());
        let text = wait(&["possible deadlock", "'a' [mutex", "'b' [mutex"]);
        // Once per state: nothing runs, so no second report; and the
        // monitor, having reported, sleeps for good.
        std::thread::sleep(Duration::from_millis(500));
        common::assert_idle_for_a_second();
        let again = std::fs::read_to_string(
            std::env::temp_dir().join(format!("gopark-deadlock-{}.txt", std::process::id())),
        )
        .unwrap_or(text);
        println!("REPORTS={}", again.matches("possible deadlock").count());
        std::process::exit(0);
    }
    let t = Instant::now();
    let out = child_within(NAME, LIMIT);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(t.elapsed() < Duration::from_secs(20));
    let so = stdout(&out);
    let ids = so.split("A=").nth(1).unwrap();
    let (a, b) = ids.split_once(" B=").unwrap();
    let b = b.lines().next().unwrap();
    assert!(
        so.contains("gopark: all coroutines are asleep - possible deadlock\n\ncoroutine "),
        "{so}"
    );
    assert!(so.contains(&format!("coroutine {a} 'a' [mutex, ")), "{so}");
    assert!(
        so.contains(&format!(": held by coroutine {b} 'b'\n")),
        "{so}"
    );
    assert!(
        so.contains(&format!(": held by coroutine {a} 'a'\n")),
        "{so}"
    );
    assert!(so.contains("REPORTS=1"), "{so}");
}

/// A runtime whose coroutines all wait on a timer or a descriptor is not
/// reported (and its monitor stays asleep: see tests/rt_idle.rs).
#[test]
fn waits_on_timers_and_descriptors_are_not_deadlocks() {
    const NAME: &str = "waits_on_timers_and_descriptors_are_not_deadlocks";
    if in_child(NAME) {
        let rt = Runtime::builder().workers(1).build().unwrap();
        let _s = rt.spawn(|| gopark::time::sleep(Duration::from_secs(60)));
        let ln = rt.run(|| gopark::net::TcpListener::bind("127.0.0.1:0").unwrap());
        let _a = rt.spawn(move || ln.accept().map(|_| ()));
        std::thread::sleep(Duration::from_millis(2500));
        println!("child ok");
        std::process::exit(0);
    }
    let out = child_within(NAME, LIMIT);
    assert!(out.status.success());
    assert!(stdout(&out).contains("child ok"));
    assert!(
        !stderr(&out).contains("possible deadlock"),
        "{}",
        stderr(&out)
    );
}

/// `GOPARK_DUMP_SIGNAL=SIGUSR1`: the signal writes the dump to stderr and
/// the process carries on.
#[test]
fn signal_writes_the_dump_and_the_process_goes_on() {
    const NAME: &str = "signal_writes_the_dump_and_the_process_goes_on";
    if in_child(NAME) {
        let wait = capture_stderr("signal");
        std::env::set_var("GOPARK_DUMP_SIGNAL", "SIGUSR1");
        let rt = Runtime::builder().name("sigrt").workers(1).build().unwrap();
        let (tx, rx) = gopark::chan::bounded::<()>(0);
        let h = Builder::new()
            .name("listener")
            .spawn_on(&rt, move || rx.recv())
            .unwrap();
        let id = h.coroutine().id();
        wait_states(&rt, &[(id, CoroutineState::ChanReceive)]);
        // SAFETY: sending a signal to our own process.
        unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
        let head = format!("coroutine {id} 'listener' [chan receive, ");
        wait(&["gopark: dump of runtime 'sigrt' (1 worker):", &head]);
        // Still running: the runtime works, the coroutine finishes.
        assert_eq!(rt.run(|| 6 * 7), 42);
        drop(tx);
        assert!(h.join().unwrap().is_err());
        println!("ID={id}");
        println!("child ok");
        return;
    }
    let out = child_within(NAME, LIMIT);
    assert!(out.status.success(), "{}", stderr(&out));
    let so = stdout(&out);
    assert!(so.contains("child ok"), "{so}");
    let id = so.lines().find_map(|l| l.strip_prefix("ID=")).unwrap();
    assert!(
        so.contains("gopark: dump of runtime 'sigrt' (1 worker):\n\n"),
        "{so}"
    );
    assert!(
        so.contains(&format!("coroutine {id} 'listener' [chan receive, ")),
        "{so}"
    );
}

/// Coroutine stacks show as `[anon:gopark stack]` in /proc/self/maps, where
/// the kernel can name anonymous mappings.
#[test]
fn stack_mappings_are_named() {
    // Can this kernel name mappings? Try on a page of our own.
    // SAFETY: a fresh anonymous mapping, named, then unmapped; nothing else
    // refers to it.
    let supported = unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        let r = libc::prctl(
            libc::PR_SET_VMA,
            libc::PR_SET_VMA_ANON_NAME as libc::c_ulong,
            p as libc::c_ulong,
            4096 as libc::c_ulong,
            c"probe".as_ptr() as libc::c_ulong,
        );
        libc::munmap(p, 4096);
        r == 0
    };
    if !supported {
        eprintln!("skipped: this kernel cannot name anonymous mappings");
        return;
    }
    let rt = Runtime::builder().workers(1).build().unwrap();
    let maps = rt.run(|| std::fs::read_to_string("/proc/self/maps").unwrap());
    assert!(maps.contains("[anon:gopark stack]"), "{maps}");
    assert!(maps.contains("[anon:gopark signal stack]"), "{maps}");
}

/// Dumps taken over and over, from a thread and from a coroutine, while
/// coroutines park and wake each other as fast as they can (channels, a
/// contended mutex, sleeps): every wake-up still arrives exactly once (a
/// lost one hangs, a doubled one panics) and the counts add up.
#[test]
fn dumping_a_busy_runtime_loses_no_wake_up() {
    const ROUNDS: u64 = 5_000;
    let rt = Runtime::builder().workers(2).build().unwrap();
    let m = Arc::new(Mutex::new(0u64));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut hs = Vec::new();
    for _ in 0..4 {
        let (a_tx, a_rx) = gopark::chan::bounded::<u64>(0);
        let (b_tx, b_rx) = gopark::chan::bounded::<u64>(0);
        let m1 = m.clone();
        hs.push(rt.spawn(move || {
            for _ in 0..ROUNDS {
                let v = a_rx.recv().unwrap();
                *m1.lock() += 1;
                b_tx.send(v + 1).unwrap();
            }
        }));
        let m2 = m.clone();
        hs.push(rt.spawn(move || {
            for i in 0..ROUNDS {
                a_tx.send(i).unwrap();
                assert_eq!(b_rx.recv().unwrap(), i + 1);
                let _g = m2.lock();
                if i % 1000 == 0 {
                    gopark::time::sleep(Duration::from_micros(50));
                }
            }
        }));
    }
    let d = done.clone();
    let inner = rt.spawn(move || {
        let mut n = 0u64;
        while !d.load(std::sync::atomic::Ordering::Relaxed) {
            n += gopark::coroutines().len() as u64;
            gopark::yield_now();
        }
        n
    });
    let thread_dumps = std::thread::scope(|sc| {
        let t = sc.spawn(|| {
            let mut n = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                std::hint::black_box(rt.dump());
            }
            n
        });
        for h in hs {
            h.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        t.join().unwrap()
    });
    assert!(thread_dumps > 0);
    assert!(inner.join().unwrap() > 0);
    assert_eq!(*m.lock(), 4 * ROUNDS);
}

/// `go!`, a scope's spawn and `WaitGroup::go` record the line of the call,
/// and the spawning coroutine as the parent.
#[test]
fn spawn_sites_of_go_scope_and_waitgroup() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    rt.run(|| {
        let me = gopark::current().unwrap().id();
        // Waits (yielding, 10 s at most) until coroutine `id` is listed.
        let find = |id: CoroutineId| {
            let end = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(c) = gopark::coroutines().into_iter().find(|c| c.id() == id) {
                    return c;
                }
                assert!(Instant::now() < end, "coroutine {id} never listed");
                gopark::yield_now();
            }
        };
        let (h, line) = (gopark::go!(|| gopark::park()), line!());
        let c = find(h.coroutine().id());
        assert_eq!(
            (c.spawned_at().file(), c.spawned_at().line()),
            (file!(), line)
        );
        assert_eq!(c.parent(), Some(me));
        h.coroutine().unpark();
        h.join().unwrap();

        gopark::scope(|s| {
            let (h, line) = (s.spawn(gopark::park), line!());
            let c = find(h.coroutine().id());
            assert_eq!(c.spawned_at().line(), line);
            assert_eq!(c.parent(), Some(me));
            h.coroutine().unpark();
        });

        let wg = WaitGroup::new();
        let (tx, rx) = gopark::chan::bounded::<CoroutineId>(1);
        let (stop_tx, stop_rx) = gopark::chan::bounded::<()>(0);
        let f = move || {
            tx.send(gopark::current().unwrap().id()).unwrap();
            let _ = stop_rx.recv(); // stays listed until told
        };
        let ((), line) = (wg.go(f), line!());
        let c = find(rx.recv().unwrap());
        assert_eq!(c.spawned_at().line(), line);
        drop(stop_tx);
        wg.wait();
    });
}
