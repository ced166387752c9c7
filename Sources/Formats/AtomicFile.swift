#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Atomic file replacement: write into a temporary file in the destination's directory, then rename(2)
/// it over the destination. Readers (or a crash) therefore see either the old file or the complete new
/// one, never a half-written file; on any error the temporary file is removed, so nothing is left behind.
/// A process that is about to be ended from another thread (the MPI watchdog aborting the job while the
/// main thread writes) calls `abandonPendingWrites` first, so not even a temporary file stays.
public enum AtomicFile {
    /// Replaces `path` with `bytes` atomically.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try write(to: path) { fd in
            try bytes.withUnsafeBytes { try writeAll(fd: fd, $0, path: path) }
        }
    }

    /// Replaces `path` with the UTF-8 encoding of `text` atomically.
    public static func write(_ text: String, to path: String) throws {
        var text = text
        try text.withUTF8 { buf in
            try write(to: path) { fd in try writeAll(fd: fd, UnsafeRawBufferPointer(buf), path: path) }
        }
    }

    /// Replaces `path` with `data` atomically.
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { fd in
            try data.withUnsafeBytes { try writeAll(fd: fd, $0, path: path) }
        }
    }

    /// Creates a temporary file next to `path`, lets `body` fill the open descriptor, then renames it
    /// into place. If `body` throws, the temporary file is unlinked and the error re-thrown.
    public static func write(to path: String, _ body: (Int32) throws -> Void) throws {
        let (fd, tmp) = try makeTemporary(near: path)
        do {
            try body(fd)
            if fsync(fd) != 0 { throw ioError(path, "fsync") }
            if close(fd) != 0 {
                let err = ioError(path, "close")
                pending.discard(tmp)
                throw err
            }
        } catch {
            close(fd)
            pending.discard(tmp)
            throw error
        }
        try commit(temporary: tmp, to: path)
    }

    /// For libraries that insist on opening the file themselves (libhdf5): `body` receives the path of
    /// a fresh temporary file in the destination directory (already created, empty) and must leave a
    /// complete file there; it is then renamed over `path`. On error the temporary file is removed.
    public static func writeViaTemporaryPath(_ path: String, _ body: (String) throws -> Void) throws {
        let (fd, tmp) = try makeTemporary(near: path)
        close(fd)
        do {
            try body(tmp)
        } catch {
            pending.discard(tmp)
            throw error
        }
        try commit(temporary: tmp, to: path)
    }

    /// Removes every temporary file this process has created and not yet renamed into place, and stops
    /// every thread from creating or committing another (they block): for the moment just before the
    /// process is ended by another thread (`MPI_Abort` from the watchdog), when a write in progress on the
    /// main thread would otherwise leave its `.name.tmp.XXXXXX` behind. Destinations already renamed are
    /// complete; none is half-written. Never returns control of the writes: call it only on the way out.
    public static func abandonPendingWrites() {
        pending.abandon()
    }

    /// The temporary files created and not yet committed or removed. Creation, rename and removal happen
    /// under one lock, so `abandon` sees each file either pending (and removes it) or already in place.
    private final class PendingTemporaries: @unchecked Sendable {
        private let lock = NSLock()
        private var paths = Set<String>()

        func contains(_ path: String) -> Bool {
            lock.lock()
            defer { lock.unlock() }
            return paths.contains(path)
        }

        /// Runs `create` (which makes the file and returns its path, or nil) and records the path.
        func create(_ create: () -> String?) -> String? {
            lock.lock()
            defer { lock.unlock() }
            let path = create()
            if let path { paths.insert(path) }
            return path
        }

        /// Renames `tmp` to `path`; returns rename(2)'s status with errno intact.
        func commit(_ tmp: String, to path: String) -> Int32 {
            lock.lock()
            defer { lock.unlock() }
            let status = rename(tmp, path)
            let saved = errno
            if status == 0 { paths.remove(tmp) }
            errno = saved
            return status
        }

        func discard(_ tmp: String) {
            lock.lock()
            defer { lock.unlock() }
            let saved = errno
            unlink(tmp)
            paths.remove(tmp)
            errno = saved
        }

        /// Removes the pending files and keeps the lock: no file is created or renamed after this.
        func abandon() {
            lock.lock()
            for path in paths { unlink(path) }
            paths.removeAll()
        }
    }

    private static let pending = PendingTemporaries()

    /// Removes the temporary files that earlier writes into `directory` left behind (`.<name>.tmp.XXXXXX`
    /// whose destination `<name>` starts with `prefix`) and returns their paths. A process ended between
    /// creating such a file and renaming it leaves one: a SIGKILL at a Slurm time limit, or mpirun ending
    /// rank 0 because another rank detected a hang (rank 0's own abort removes its pending files, but its
    /// SIGTERM handler cannot: SIGTERM also asks for a stop after the current iteration, whose writes
    /// must go on). Only names `<prefix>.…` or `<prefix>_…`, and only files unmodified for `minimumAge`
    /// seconds: another run writing into the same directory (an `--oroot` that starts the same way) may
    /// have a write in progress, and removing its temporary file would make its rename fail. Files this
    /// process is writing are kept.
    public static func removeAbandonedTemporaries(in directory: String, forNamesStartingWith prefix: String,
                                                  minimumAge: TimeInterval = 300, now: Date = Date()) -> [String] {
        guard !prefix.isEmpty, let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var removed: [String] = []
        for name in names.sorted() where name.hasPrefix("." + prefix) {
            let rest = name.dropFirst(1 + prefix.count)
            guard rest.first == "." || rest.first == "_" else { continue }
            // mkstemp's suffix: ".tmp." and six characters of [A-Za-z0-9].
            let parts = name.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count >= 4, parts[parts.count - 2] == "tmp", parts.last!.count == 6,
                  parts.last!.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else { continue }
            let path = directory == "/" ? "/" + name : directory + "/" + name
            guard !pending.contains(path),
                  let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
                  now.timeIntervalSince(modified) >= minimumAge else { continue }
            if unlink(path) == 0 { removed.append(path) }
        }
        return removed
    }

    // MARK: - Internals

    static func makeTemporary(near path: String) throws -> (Int32, String) {
        let dir: String
        let base: String
        if let slash = path.lastIndex(of: "/") {
            dir = String(path[..<slash]).isEmpty ? "/" : String(path[..<slash])
            base = String(path[path.index(after: slash)...])
        } else {
            dir = "."
            base = path
        }
        if base.isEmpty { throw FormatError(.io, file: path, "cannot write: the path names a directory") }
        var template = Array("\(dir)/.\(base).tmp.XXXXXX".utf8CString)
        var fd: Int32 = -1
        let created = pending.create { () -> String? in
            fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            return fd < 0 ? nil : template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        }
        guard let tmp = created else { throw ioError(path, "cannot create a temporary file in \(dir)") }
        // mkstemp makes 0600 files; outputs are meant to be shared like any other result file.
        fchmod(fd, 0o644)
        return (fd, tmp)
    }

    /// Removes a temporary file from `makeTemporary` that will not be committed.
    static func discardTemporary(_ tmp: String) {
        pending.discard(tmp)
    }

    static func commit(temporary tmp: String, to path: String) throws {
        if pending.commit(tmp, to: path) != 0 {
            let err = ioError(path, "cannot rename the temporary file into place")
            pending.discard(tmp)
            throw err
        }
    }

    static func writeAll(fd: Int32, _ buf: UnsafeRawBufferPointer, path: String) throws {
        guard var p = buf.baseAddress else { return }
        var left = buf.count
        while left > 0 {
            let n = posixWrite(fd, p, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw ioError(path, "write failed")
            }
            p += n
            left -= n
        }
    }

    static func ioError(_ path: String, _ what: String) -> FormatError {
        FormatError(.io, file: path, "\(what): \(String(cString: strerror(errno)))")
    }
}

@inline(__always)
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, p, n)
    #elseif canImport(Musl)
    return Musl.write(fd, p, n)
    #else
    return Darwin.write(fd, p, n)
    #endif
}

/// Whole-file reading with errors that name the file.
enum FileBytes {
    static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        if fd < 0 {
            if errno == ENOENT { throw FormatError(.notFound, file: path, "no such file") }
            throw AtomicFile.ioError(path, "cannot open")
        }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw AtomicFile.ioError(path, "cannot stat") }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw FormatError(.io, file: path, "is a directory, not a file") }
        let size = Int(st.st_size)
        var bytes = [UInt8](repeating: 0, count: size)
        var got = 0
        try bytes.withUnsafeMutableBytes { buf in
            while got < size {
                let n = pread(fd, buf.baseAddress! + got, size - got, off_t(got))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw AtomicFile.ioError(path, "read failed")
                }
                if n == 0 { break }
                got += n
            }
        }
        if got < size { bytes.removeLast(size - got) }
        return bytes
    }

    /// Reads `count` bytes at `offset`; returns fewer only at end of file.
    static func read(fd: Int32, offset: Int, count: Int, into buf: UnsafeMutableRawPointer, path: String) throws -> Int {
        var got = 0
        while got < count {
            let n = pread(fd, buf + got, count - got, off_t(offset + got))
            if n < 0 {
                if errno == EINTR { continue }
                throw AtomicFile.ioError(path, "read failed")
            }
            if n == 0 { break }
            got += n
        }
        return got
    }
}
