//! `gopark::fs`: std's file API on the blocking pool.

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::sleeper;

use gopark::fs::{self, File, OpenOptions};

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("gopark-fs-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn round_trip() {
    let dir = tmp("round");
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    rt.run(move || {
        let p = dir.join("a.txt");
        fs::write(&p, "hello").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hello");
        assert_eq!(fs::read_to_string(&p).unwrap(), "hello");
        assert_eq!(fs::metadata(&p).unwrap().len(), 5);
        assert!(fs::symlink_metadata(&p).unwrap().is_file());

        // File: write, seek, read (through &File too), set_len, clone.
        let mut f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
        f.seek(SeekFrom::End(0)).unwrap();
        f.write_all(b", world").unwrap();
        f.sync_all().unwrap();
        f.sync_data().unwrap();
        (&f).seek(SeekFrom::Start(0)).unwrap();
        let mut s = String::new();
        (&f).read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello, world");
        let g = f.try_clone().unwrap();
        g.set_len(5).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 5);
        f.seek(SeekFrom::Start(1)).unwrap();
        let mut two = [0u8; 2];
        f.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"el");

        // A large write and read cross the 2 MiB per-call copy limit.
        let big: Vec<u8> = (0..5_000_000u32).map(|i| i as u8).collect();
        let bp = dir.join("big");
        let mut bf = File::create(&bp).unwrap();
        bf.write_all(&big).unwrap();
        drop(bf);
        let mut back = Vec::new();
        File::open(&bp).unwrap().read_to_end(&mut back).unwrap();
        assert!(back == big);
        let mut chunk = vec![0u8; 3_000_000];
        let n = File::open(&bp).unwrap().read(&mut chunk).unwrap();
        assert!(n > 0 && n <= 3_000_000 && chunk[..n] == big[..n]);

        // Directories, rename, copy, links, permissions.
        fs::create_dir(dir.join("d")).unwrap();
        fs::create_dir_all(dir.join("d/e/f")).unwrap();
        fs::rename(&p, dir.join("d/b.txt")).unwrap();
        assert_eq!(fs::copy(dir.join("d/b.txt"), dir.join("c.txt")).unwrap(), 5);
        fs::hard_link(dir.join("c.txt"), dir.join("h.txt")).unwrap();
        std::os::unix::fs::symlink(dir.join("c.txt"), dir.join("s.txt")).unwrap();
        assert_eq!(fs::read_link(dir.join("s.txt")).unwrap(), dir.join("c.txt"));
        assert_eq!(
            fs::canonicalize(dir.join("s.txt")).unwrap(),
            std::fs::canonicalize(dir.join("c.txt")).unwrap()
        );
        let mut perm = fs::metadata(dir.join("c.txt")).unwrap().permissions();
        perm.set_readonly(true);
        fs::set_permissions(dir.join("c.txt"), perm).unwrap();
        assert!(fs::metadata(dir.join("c.txt"))
            .unwrap()
            .permissions()
            .readonly());
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["big", "c.txt", "d", "h.txt", "s.txt"]);
        fs::remove_file(dir.join("s.txt")).unwrap();
        fs::remove_dir(dir.join("d/e/f")).unwrap();
        assert_eq!(
            fs::remove_file(dir.join("nope")).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
        fs::remove_dir_all(&dir).unwrap();
        assert!(fs::metadata(&dir).is_err());
    });
}

#[test]
fn works_on_plain_threads() {
    let dir = tmp("plain");
    let p = dir.join("x");
    fs::write(&p, b"abc").unwrap();
    let mut f = File::open(&p).unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "abc");
    let std_file = f.into_std().unwrap();
    assert_eq!(std_file.metadata().unwrap().len(), 3);
    fs::remove_dir_all(&dir).unwrap();
}

/// Opening a FIFO blocks in open(2) until a writer opens it; on the pool,
/// that does not stall the other coroutines of the (single) worker.
#[test]
fn opening_a_fifo_does_not_stall_the_worker() {
    let dir = tmp("fifo");
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    let f2 = fifo.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut w = std::fs::OpenOptions::new().write(true).open(&f2).unwrap();
        w.write_all(b"through the fifo").unwrap();
    });
    let (got, waited, worst) = rt.run(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let s = sleeper(stop.clone());
        gopark::time::sleep(Duration::from_millis(5));
        let t = Instant::now();
        let mut f = File::open(&fifo).unwrap(); // waits for the writer
        let waited = t.elapsed();
        let mut got = String::new();
        f.read_to_string(&mut got).unwrap();
        stop.store(true, Ordering::Relaxed);
        (got, waited, s.join().unwrap())
    });
    writer.join().unwrap();
    eprintln!("open waited {waited:?}; sleeper's worst gap {worst:?}");
    assert_eq!(got, "through the fifo");
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(worst < Duration::from_millis(100), "worst gap {worst:?}");
    fs::remove_dir_all(&dir).unwrap();
}
