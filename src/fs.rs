//! File system access that does not block the worker: `std::fs`'s API, with
//! std's names, where every call runs on the runtime's blocking pool (see
//! [`blocking`](crate::blocking)) while the calling coroutine parks. On a
//! plain thread the calls simply run inline. Porting code is changing the
//! import:
//!
//! ```
//! use std::io::{Read, Seek, SeekFrom, Write};
//! use gopark::fs::{self, File};
//!
//! gopark::run(|| {
//!     let dir = std::env::temp_dir().join(format!("gopark-fs-doc-{}", std::process::id()));
//!     fs::create_dir_all(&dir).unwrap();
//!     let path = dir.join("hello.txt");
//!     fs::write(&path, "hello").unwrap();
//!     assert_eq!(fs::read_to_string(&path).unwrap(), "hello");
//!
//!     let mut f = File::options().read(true).append(true).open(&path).unwrap();
//!     f.write_all(b", world").unwrap();
//!     f.seek(SeekFrom::Start(0)).unwrap();
//!     let mut s = String::new();
//!     f.read_to_string(&mut s).unwrap();
//!     assert_eq!(s, "hello, world");
//!     assert_eq!(f.metadata().unwrap().len(), 12);
//!
//!     fs::remove_dir_all(&dir).unwrap();
//! });
//! ```
//!
//! Regular files cannot be polled (epoll refuses them, and their reads
//! never return "would block"), so, like Go's runtime and tokio, gopark hands
//! each call to a thread. A call costs a round trip to the pool (a few
//! microseconds); read and write large buffers rather than a byte at a time,
//! or wrap a [`File`] in a `std::io::BufReader`/`BufWriter`.
//!
//! Freeing a very large buffer is slow too, and happens where it is dropped:
//! dropping the `Vec` of a 1 GiB [`read`] unmaps its memory, which took
//! about 0.3 s on a 2-core VM, on the worker. Drop such a buffer inside
//! [`blocking`](crate::blocking) (`gopark::blocking(move || drop(buf))`) or
//! read the file in pieces.
//!
//! Reads and writes copy through a buffer owned by the pool job (at most
//! 2 MiB per call; a larger `read` or `write` transfers part of it, as
//! `read`/`write` may), never through a pointer into the coroutine's stack:
//! if the runtime is dropped while a coroutine waits, the coroutine unwinds
//! at once and the call finishes on its pool thread. The file position then
//! reflects the finished call.
//!
//! [`DirEntry`], [`Metadata`], [`Permissions`] and [`FileType`] are std's;
//! `DirEntry::metadata` and `DirEntry::file_type` make a (normally fast)
//! system call on the calling thread.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use std::fs::{DirEntry, FileType, Metadata, Permissions};

use crate::runtime::worker;

/// Most bytes one `read` or `write` moves through the pool.
const MAX_BUF: usize = 2 * 1024 * 1024;

fn in_coroutine() -> bool {
    worker::current_ctx().is_some()
}

fn owned<P: AsRef<Path>>(p: P) -> PathBuf {
    p.as_ref().to_path_buf()
}

/// Reads the whole file, as `std::fs::read`.
///
/// ```
/// let bytes = gopark::run(|| gopark::fs::read("/proc/self/stat").unwrap());
/// assert!(!bytes.is_empty());
/// ```
pub fn read<P: AsRef<Path>>(path: P) -> io::Result<Vec<u8>> {
    let p = owned(path);
    crate::blocking(move || std::fs::read(p))
}

/// Reads the whole file as UTF-8, as `std::fs::read_to_string`.
///
/// ```
/// let s = gopark::run(|| gopark::fs::read_to_string("/proc/self/status").unwrap());
/// assert!(s.contains("Pid:"));
/// ```
pub fn read_to_string<P: AsRef<Path>>(path: P) -> io::Result<String> {
    let p = owned(path);
    crate::blocking(move || std::fs::read_to_string(p))
}

/// Writes `contents` as the whole file (created or truncated), as
/// `std::fs::write`. The bytes are copied for the pool job.
///
/// ```
/// let p = std::env::temp_dir().join(format!("gopark-write-{}", std::process::id()));
/// gopark::run(move || {
///     gopark::fs::write(&p, b"abc").unwrap();
///     assert_eq!(gopark::fs::read(&p).unwrap(), b"abc");
///     gopark::fs::remove_file(&p).unwrap();
/// });
/// ```
pub fn write<P: AsRef<Path>, C: AsRef<[u8]>>(path: P, contents: C) -> io::Result<()> {
    if !in_coroutine() {
        return std::fs::write(path, contents);
    }
    let p = owned(path);
    let c = contents.as_ref().to_vec();
    crate::blocking(move || std::fs::write(p, c))
}

macro_rules! path_fns {
    ($($(#[$m:meta])* $name:ident -> $ret:ty;)*) => {$(
        $(#[$m])*
        pub fn $name<P: AsRef<Path>>(path: P) -> io::Result<$ret> {
            let p = owned(path);
            crate::blocking(move || std::fs::$name(p))
        }
    )*};
}

macro_rules! two_path_fns {
    ($($(#[$m:meta])* $name:ident -> $ret:ty;)*) => {$(
        $(#[$m])*
        pub fn $name<P: AsRef<Path>, Q: AsRef<Path>>(from: P, to: Q) -> io::Result<$ret> {
            let (a, b) = (owned(from), owned(to));
            crate::blocking(move || std::fs::$name(a, b))
        }
    )*};
}

path_fns! {
    /// The metadata of `path`, following symlinks, as `std::fs::metadata`.
    ///
    /// ```
    /// assert!(gopark::run(|| gopark::fs::metadata("/").unwrap().is_dir()));
    /// ```
    metadata -> Metadata;
    /// The metadata of `path` itself (not following a symlink), as
    /// `std::fs::symlink_metadata`.
    ///
    /// ```
    /// let m = gopark::run(|| gopark::fs::symlink_metadata("/proc/self").unwrap());
    /// assert!(m.file_type().is_symlink());
    /// ```
    symlink_metadata -> Metadata;
    /// Creates a directory, as `std::fs::create_dir`.
    ///
    /// ```
    /// let d = std::env::temp_dir().join(format!("gopark-mkdir-{}", std::process::id()));
    /// gopark::run(move || {
    ///     gopark::fs::create_dir(&d).unwrap();
    ///     assert!(gopark::fs::create_dir(&d).is_err());
    ///     gopark::fs::remove_dir(&d).unwrap();
    /// });
    /// ```
    create_dir -> ();
    /// Creates a directory and its missing parents, as
    /// `std::fs::create_dir_all`.
    ///
    /// ```
    /// let d = std::env::temp_dir().join(format!("gopark-mkdirs-{}", std::process::id()));
    /// gopark::run(move || {
    ///     gopark::fs::create_dir_all(d.join("a/b")).unwrap();
    ///     gopark::fs::remove_dir_all(&d).unwrap();
    /// });
    /// ```
    create_dir_all -> ();
    /// Removes a file, as `std::fs::remove_file`.
    ///
    /// ```
    /// let err = gopark::run(|| gopark::fs::remove_file("/no/such/file").unwrap_err());
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// ```
    remove_file -> ();
    /// Removes an empty directory, as `std::fs::remove_dir`.
    ///
    /// ```
    /// assert!(gopark::run(|| gopark::fs::remove_dir("/no/such/dir").is_err()));
    /// ```
    remove_dir -> ();
    /// Removes a directory and everything in it, as `std::fs::remove_dir_all`.
    ///
    /// ```
    /// assert!(gopark::run(|| gopark::fs::remove_dir_all("/no/such/dir").is_err()));
    /// ```
    remove_dir_all -> ();
    /// The absolute, symlink-free form of `path`, as `std::fs::canonicalize`.
    ///
    /// ```
    /// let p = gopark::run(|| gopark::fs::canonicalize("/proc/../proc").unwrap());
    /// assert_eq!(p, std::path::Path::new("/proc"));
    /// ```
    canonicalize -> PathBuf;
    /// The target of a symlink, as `std::fs::read_link`.
    ///
    /// ```
    /// let t = gopark::run(|| gopark::fs::read_link("/proc/self").unwrap());
    /// assert_eq!(t, std::path::Path::new(&std::process::id().to_string()));
    /// ```
    read_link -> PathBuf;
}

two_path_fns! {
    /// Renames `from` to `to`, replacing `to` if it exists, as
    /// `std::fs::rename`.
    ///
    /// ```
    /// let d = std::env::temp_dir();
    /// let (a, b) = (d.join(format!("gopark-mv-a-{}", std::process::id())),
    ///               d.join(format!("gopark-mv-b-{}", std::process::id())));
    /// gopark::run(move || {
    ///     gopark::fs::write(&a, "x").unwrap();
    ///     gopark::fs::rename(&a, &b).unwrap();
    ///     assert_eq!(gopark::fs::read(&b).unwrap(), b"x");
    ///     gopark::fs::remove_file(&b).unwrap();
    /// });
    /// ```
    rename -> ();
    /// Copies the contents and permissions of a file, as `std::fs::copy`;
    /// returns the bytes copied.
    ///
    /// ```
    /// let d = std::env::temp_dir();
    /// let (a, b) = (d.join(format!("gopark-cp-a-{}", std::process::id())),
    ///               d.join(format!("gopark-cp-b-{}", std::process::id())));
    /// gopark::run(move || {
    ///     gopark::fs::write(&a, "xyz").unwrap();
    ///     assert_eq!(gopark::fs::copy(&a, &b).unwrap(), 3);
    ///     gopark::fs::remove_file(&a).unwrap();
    ///     gopark::fs::remove_file(&b).unwrap();
    /// });
    /// ```
    copy -> u64;
    /// Makes a hard link `to` of the file `from`, as `std::fs::hard_link`.
    ///
    /// ```
    /// let d = std::env::temp_dir();
    /// let (a, b) = (d.join(format!("gopark-ln-a-{}", std::process::id())),
    ///               d.join(format!("gopark-ln-b-{}", std::process::id())));
    /// gopark::run(move || {
    ///     gopark::fs::write(&a, "x").unwrap();
    ///     gopark::fs::hard_link(&a, &b).unwrap();
    ///     assert_eq!(gopark::fs::read(&b).unwrap(), b"x");
    ///     gopark::fs::remove_file(&a).unwrap();
    ///     gopark::fs::remove_file(&b).unwrap();
    /// });
    /// ```
    hard_link -> ();
}

/// Sets the permissions of `path`, as `std::fs::set_permissions`.
///
/// ```
/// use std::os::unix::fs::PermissionsExt;
/// let p = std::env::temp_dir().join(format!("gopark-chmod-{}", std::process::id()));
/// gopark::run(move || {
///     gopark::fs::write(&p, "x").unwrap();
///     gopark::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
///     assert_eq!(gopark::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
///     gopark::fs::remove_file(&p).unwrap();
/// });
/// ```
pub fn set_permissions<P: AsRef<Path>>(path: P, perm: Permissions) -> io::Result<()> {
    let p = owned(path);
    crate::blocking(move || std::fs::set_permissions(p, perm))
}

/// The entries of a directory, as `std::fs::read_dir`. The whole listing is
/// read on the pool in one call; iterating then makes no system call.
///
/// ```
/// let names: Vec<_> = gopark::run(|| {
///     gopark::fs::read_dir("/proc/self")
///         .unwrap()
///         .map(|e| e.unwrap().file_name())
///         .collect()
/// });
/// assert!(names.iter().any(|n| n == "status"));
/// ```
pub fn read_dir<P: AsRef<Path>>(path: P) -> io::Result<ReadDir> {
    let p = owned(path);
    crate::blocking(move || {
        let entries: Vec<_> = std::fs::read_dir(p)?.collect();
        Ok(ReadDir {
            entries: entries.into_iter(),
        })
    })
}

/// The entries of a directory (see [`read_dir`]): an iterator of
/// `io::Result<DirEntry>`, like `std::fs::ReadDir`.
#[derive(Debug)]
pub struct ReadDir {
    entries: std::vec::IntoIter<io::Result<DirEntry>>,
}

impl Iterator for ReadDir {
    type Item = io::Result<DirEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        self.entries.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

/// An open file whose calls run on the blocking pool, like `std::fs::File`.
///
/// `Read`, `Write` and `Seek` are implemented for `File` and for `&File`
/// (as std's are: several coroutines may use one file; each call is one
/// system call on a pool thread, and they share the file position).
///
/// ```
/// use std::io::{Read, Write};
/// let p = std::env::temp_dir().join(format!("gopark-file-{}", std::process::id()));
/// gopark::run(move || {
///     let mut f = gopark::fs::File::create(&p).unwrap();
///     f.write_all(b"data").unwrap();
///     f.sync_all().unwrap();
///     let mut s = String::new();
///     gopark::fs::File::open(&p).unwrap().read_to_string(&mut s).unwrap();
///     assert_eq!(s, "data");
///     gopark::fs::remove_file(&p).unwrap();
/// });
/// ```
pub struct File {
    inner: Arc<std::fs::File>,
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("fd", &self.inner.as_raw_fd())
            .finish()
    }
}

impl File {
    fn wrap(f: std::fs::File) -> File {
        File { inner: Arc::new(f) }
    }

    /// Runs `op` on the std file, on the pool.
    fn on_pool<R: Send + 'static>(
        &self,
        op: impl FnOnce(&std::fs::File) -> R + Send + 'static,
    ) -> R {
        if !in_coroutine() {
            return op(&self.inner);
        }
        let f = self.inner.clone();
        crate::blocking(move || op(&f))
    }

    /// Opens a file for reading, as `std::fs::File::open`. Opening a FIFO
    /// waits (on the pool) until a writer opens it.
    ///
    /// ```
    /// assert!(gopark::run(|| gopark::fs::File::open("/proc/self/status").is_ok()));
    /// ```
    pub fn open<P: AsRef<Path>>(path: P) -> io::Result<File> {
        let p = owned(path);
        crate::blocking(move || std::fs::File::open(p)).map(File::wrap)
    }

    /// Opens a file for writing, created or truncated, as
    /// `std::fs::File::create`.
    ///
    /// ```
    /// let p = std::env::temp_dir().join(format!("gopark-create-{}", std::process::id()));
    /// gopark::run(move || {
    ///     gopark::fs::File::create(&p).unwrap();
    ///     assert_eq!(gopark::fs::metadata(&p).unwrap().len(), 0);
    ///     gopark::fs::remove_file(&p).unwrap();
    /// });
    /// ```
    pub fn create<P: AsRef<Path>>(path: P) -> io::Result<File> {
        let p = owned(path);
        crate::blocking(move || std::fs::File::create(p)).map(File::wrap)
    }

    /// Creates a new file for writing; fails if it exists, as
    /// `std::fs::File::create_new`.
    ///
    /// ```
    /// let err = gopark::run(|| gopark::fs::File::create_new("/").unwrap_err());
    /// assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    /// ```
    pub fn create_new<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
    }

    /// A blank [`OpenOptions`], as `std::fs::File::options`.
    ///
    /// ```
    /// let f = gopark::run(|| gopark::fs::File::options().read(true).open("/proc/self/stat"));
    /// assert!(f.is_ok());
    /// ```
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// The file's metadata.
    ///
    /// ```
    /// let m = gopark::run(|| gopark::fs::File::open("/").unwrap().metadata().unwrap());
    /// assert!(m.is_dir());
    /// ```
    pub fn metadata(&self) -> io::Result<Metadata> {
        self.on_pool(|f| f.metadata())
    }

    /// Truncates or extends the file to `size` bytes.
    ///
    /// ```
    /// let p = std::env::temp_dir().join(format!("gopark-setlen-{}", std::process::id()));
    /// gopark::run(move || {
    ///     let f = gopark::fs::File::create(&p).unwrap();
    ///     f.set_len(10).unwrap();
    ///     assert_eq!(f.metadata().unwrap().len(), 10);
    ///     gopark::fs::remove_file(&p).unwrap();
    /// });
    /// ```
    pub fn set_len(&self, size: u64) -> io::Result<()> {
        self.on_pool(move |f| f.set_len(size))
    }

    /// Flushes data and metadata to the device (`fsync`).
    ///
    /// ```
    /// let p = std::env::temp_dir().join(format!("gopark-sync-{}", std::process::id()));
    /// gopark::run(move || {
    ///     let f = gopark::fs::File::create(&p).unwrap();
    ///     f.sync_all().unwrap();
    ///     f.sync_data().unwrap();
    ///     gopark::fs::remove_file(&p).unwrap();
    /// });
    /// ```
    pub fn sync_all(&self) -> io::Result<()> {
        self.on_pool(|f| f.sync_all())
    }

    /// Flushes data to the device (`fdatasync`).
    ///
    /// ```
    /// let f = gopark::run(|| gopark::fs::File::open("/proc/self/stat").unwrap());
    /// let _ = f.sync_data(); // procfs may refuse; a plain file would not
    /// ```
    pub fn sync_data(&self) -> io::Result<()> {
        self.on_pool(|f| f.sync_data())
    }

    /// A new `File` for the same open file (a duplicated descriptor,
    /// sharing the position).
    ///
    /// ```
    /// let f = gopark::run(|| gopark::fs::File::open("/").unwrap());
    /// let g = f.try_clone().unwrap();
    /// assert!(g.metadata().unwrap().is_dir());
    /// ```
    pub fn try_clone(&self) -> io::Result<File> {
        self.on_pool(|f| f.try_clone()).map(File::wrap)
    }

    /// Changes the file's permissions.
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    /// let p = std::env::temp_dir().join(format!("gopark-fchmod-{}", std::process::id()));
    /// gopark::run(move || {
    ///     let f = gopark::fs::File::create(&p).unwrap();
    ///     f.set_permissions(std::fs::Permissions::from_mode(0o640)).unwrap();
    ///     assert_eq!(f.metadata().unwrap().permissions().mode() & 0o777, 0o640);
    ///     gopark::fs::remove_file(&p).unwrap();
    /// });
    /// ```
    pub fn set_permissions(&self, perm: Permissions) -> io::Result<()> {
        self.on_pool(move |f| f.set_permissions(perm))
    }

    /// The std file. Fails (returning `self`) while a call started by a
    /// coroutine that was cancelled still runs on the pool.
    ///
    /// ```
    /// let f = gopark::run(|| gopark::fs::File::open("/").unwrap());
    /// let std_file: std::fs::File = f.into_std().unwrap();
    /// assert!(std_file.metadata().unwrap().is_dir());
    /// ```
    pub fn into_std(self) -> Result<std::fs::File, File> {
        Arc::try_unwrap(self.inner).map_err(|inner| File { inner })
    }

    fn read_inner(&self, buf: &mut [u8]) -> io::Result<usize> {
        if !in_coroutine() {
            return (&*self.inner).read(buf);
        }
        let f = self.inner.clone();
        crate::blocking::read_on_pool(buf, MAX_BUF, move |d| (&*f).read(d))
    }

    fn read_to_end_inner(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        if !in_coroutine() {
            return (&*self.inner).read_to_end(buf);
        }
        let f = self.inner.clone();
        crate::blocking::read_to_end_on_pool(buf, move |d| (&*f).read_to_end(d))
    }

    fn write_inner(&self, buf: &[u8]) -> io::Result<usize> {
        if !in_coroutine() {
            return (&*self.inner).write(buf);
        }
        let data = buf[..buf.len().min(MAX_BUF)].to_vec();
        let f = self.inner.clone();
        crate::blocking(move || (&*f).write(&data))
    }

    fn write_all_inner(&self, buf: &[u8]) -> io::Result<()> {
        if !in_coroutine() {
            return (&*self.inner).write_all(buf);
        }
        for chunk in buf.chunks(MAX_BUF) {
            let data = chunk.to_vec();
            let f = self.inner.clone();
            crate::blocking(move || (&*f).write_all(&data))?;
        }
        Ok(())
    }

    fn seek_inner(&self, pos: SeekFrom) -> io::Result<u64> {
        self.on_pool(move |f| {
            let mut f = f;
            f.seek(pos)
        })
    }
}

impl Read for &File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.read_to_end_inner(buf)
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.read_to_end_inner(buf)
    }
}

impl Write for &File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write_all_inner(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(()) // std's File has no buffer either
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write_all_inner(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for &File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.seek_inner(pos)
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.seek_inner(pos)
    }
}

impl From<std::fs::File> for File {
    fn from(f: std::fs::File) -> File {
        File::wrap(f)
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl From<File> for OwnedFd {
    /// The descriptor; a duplicate of it if a call started by a cancelled
    /// coroutine still holds the file.
    fn from(f: File) -> OwnedFd {
        match Arc::try_unwrap(f.inner) {
            Ok(f) => f.into(),
            Err(shared) => shared
                .as_fd()
                .try_clone_to_owned()
                .unwrap_or_else(|e| panic!("gopark: cannot duplicate a file descriptor: {e}")),
        }
    }
}

impl IntoRawFd for File {
    /// As [`From<File> for OwnedFd`](#impl-From<File>-for-OwnedFd).
    fn into_raw_fd(self) -> RawFd {
        OwnedFd::from(self).into_raw_fd()
    }
}

/// Options for opening a [`File`], as `std::fs::OpenOptions` (including
/// `std::os::unix::fs::OpenOptionsExt`'s `mode` and `custom_flags`).
///
/// ```
/// let p = std::env::temp_dir().join(format!("gopark-opts-{}", std::process::id()));
/// gopark::run(move || {
///     let f = gopark::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&p);
///     assert!(f.is_ok());
///     gopark::fs::remove_file(&p).unwrap();
/// });
/// ```
#[derive(Debug, Clone)]
pub struct OpenOptions(std::fs::OpenOptions);

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

macro_rules! flag {
    ($($(#[$m:meta])* $name:ident;)*) => {$(
        $(#[$m])*
        pub fn $name(&mut self, on: bool) -> &mut Self {
            self.0.$name(on);
            self
        }
    )*};
}

impl OpenOptions {
    /// Every option off, as `std::fs::OpenOptions::new`.
    ///
    /// ```
    /// let err = gopark::run(|| gopark::fs::OpenOptions::new().open("/").unwrap_err());
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn new() -> OpenOptions {
        OpenOptions(std::fs::OpenOptions::new())
    }

    flag! {
        /// Open for reading.
        read;
        /// Open for writing.
        write;
        /// Every write appends (implies write).
        append;
        /// Truncate to zero length on open (needs write).
        truncate;
        /// Create the file if it does not exist (needs write or append).
        create;
        /// Create the file; fail if it exists.
        create_new;
    }

    /// The permission bits of a created file (before the umask), as
    /// `OpenOptionsExt::mode`.
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(&mut self.0, mode);
        self
    }

    /// Extra `open(2)` flags, as `OpenOptionsExt::custom_flags`.
    pub fn custom_flags(&mut self, flags: i32) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut self.0, flags);
        self
    }

    /// Opens `path` with these options, on the pool.
    ///
    /// ```
    /// let f = gopark::run(|| gopark::fs::OpenOptions::new().read(true).open("/proc/self/stat"));
    /// assert!(f.is_ok());
    /// ```
    pub fn open<P: AsRef<Path>>(&self, path: P) -> io::Result<File> {
        let (opts, p) = (self.0.clone(), owned(path));
        crate::blocking(move || opts.open(p)).map(File::wrap)
    }
}
