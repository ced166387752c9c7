import CHDF5
import Foundation
import Volumes

/// A small typed layer over serial libhdf5: datasets of float32/float64/int64, groups, and scalar,
/// array and string attributes. Every negative return code becomes a `FormatError(.hdf5)` naming the
/// file and the object; HDF5's own stderr error printing is switched off.
///
/// Files made with `create` are written to a temporary file in the destination directory and renamed
/// into place by `commit()`; a file that is never committed (error, early exit) is removed.
/// libhdf5 (serial build) is not thread-safe: use one `HDF5File` from one thread at a time, and do not
/// use HDF5 from two threads at once.
public final class HDF5File {
    /// Serialises the library-level helpers of this module that touch libhdf5 (`VolumeIO` on `N@file.h5`,
    /// `ReferenceStackFile`), because the serial libhdf5 build must not be entered from two threads.
    /// Callers that use `HDF5File` directly from several threads should hold it too.
    public static let lock = NSRecursiveLock()

    public let path: String
    private var fid: hid_t
    private let temporaryPath: String?
    private var open: Bool

    /// Turns off HDF5's printing of its error stack; errors become Swift errors instead. A thread-safe
    /// libhdf5 keeps that setting per thread, so it is set on every call that opens or creates a file
    /// (the refinement writes its files on a background thread).
    private static func silenceErrors() { chdf5_silence_errors() }

    private init(path: String, fid: hid_t, temporaryPath: String?) {
        self.path = path
        self.fid = fid
        self.temporaryPath = temporaryPath
        self.open = true
    }

    /// A file-access property list (the caller closes it) whose file close also closes every object
    /// still open in the file (H5F_CLOSE_STRONG), so ids a failed read or write left open do not keep
    /// the library busy at exit ("infinite loop closing library"); `format18` pins the 1.8 file format.
    private static func fileAccessList(_ path: String, format18: Bool) throws -> hid_t {
        let fapl = H5Pcreate(chdf5_p_file_access())
        if fapl < 0 { throw FormatError(.hdf5, file: path, "H5Pcreate failed") }
        if H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0
            || (format18 && H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) < 0) {
            H5Pclose(fapl)
            throw FormatError(.hdf5, file: path, "cannot set up the HDF5 file-access property list")
        }
        return fapl
    }

    /// Starts a new file that will appear at `path` (atomically) on `commit()`.
    public static func create(_ path: String) throws -> HDF5File {
        silenceErrors()
        // File format of HDF5 1.8+: superblock v2 and object headers v2 carry checksums, so a reader
        // (ours or h5py) detects corrupted metadata instead of following garbage offsets (libhdf5 can
        // crash on corrupted v0/v1 metadata).
        let fapl = try fileAccessList(path, format18: true)
        defer { H5Pclose(fapl) }
        let (fd, tmp) = try AtomicFile.makeTemporary(near: path)
        closeDescriptor(fd)
        // No modification times in object headers (root group included): the same content gives the
        // same bytes, so two runs with the same arguments write identical files.
        let fcpl = H5Pcreate(chdf5_p_file_create())
        defer { if fcpl >= 0 { H5Pclose(fcpl) } }
        if fcpl < 0 || H5Pset_obj_track_times(fcpl, false) < 0 {
            AtomicFile.discardTemporary(tmp)
            throw FormatError(.hdf5, file: path, "cannot create an HDF5 file-creation property list")
        }
        let fid = H5Fcreate(tmp, chdf5_f_acc_trunc(), fcpl, fapl)
        if fid < 0 {
            AtomicFile.discardTemporary(tmp)
            throw FormatError(.hdf5, file: path, "cannot create HDF5 file (H5Fcreate failed)")
        }
        return HDF5File(path: path, fid: fid, temporaryPath: tmp)
    }

    /// Opens an existing file read-only.
    public static func open(_ path: String) throws -> HDF5File {
        silenceErrors()
        guard FileManager.default.fileExists(atPath: path) else { throw FormatError(.notFound, file: path, "no such file") }
        // Check the signature first: H5Fopen on a non-HDF5 file is slow and its message is vague.
        let f = try ReadOnlyFile(path)
        let sig: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
        if try f.size < 8 || f.bytes(at: 0, count: 8, what: "the HDF5 signature") != sig {
            throw FormatError(.badMagic, file: path, "not an HDF5 file (no \\x89HDF signature at byte 0)")
        }
        let fapl = try fileAccessList(path, format18: false)
        defer { H5Pclose(fapl) }
        let fid = H5Fopen(path, chdf5_f_acc_rdonly(), fapl)
        if fid < 0 { throw FormatError(.hdf5, file: path, "cannot open HDF5 file (H5Fopen failed: corrupt or truncated)") }
        return HDF5File(path: path, fid: fid, temporaryPath: nil)
    }

    /// Creates the file, lets `body` fill it, commits; on error nothing is left at `path`.
    public static func write(_ path: String, _ body: (HDF5File) throws -> Void) throws {
        let file = try create(path)
        do {
            try body(file)
            try file.commit()
        } catch {
            file.abandon()
            throw error
        }
    }

    /// Closes a file made by `create` and renames it into place.
    public func commit() throws {
        guard open else { return }
        open = false
        let r = H5Fclose(fid)
        guard let tmp = temporaryPath else {
            if r < 0 { throw err("H5Fclose failed") }
            return
        }
        if r < 0 {
            AtomicFile.discardTemporary(tmp)
            throw err("H5Fclose failed while finishing the file")
        }
        try AtomicFile.commit(temporary: tmp, to: path)
    }

    /// Closes without keeping anything (for created files the temporary file is removed).
    public func abandon() {
        guard open else { return }
        open = false
        _ = H5Fclose(fid)
        if let tmp = temporaryPath { AtomicFile.discardTemporary(tmp) }
    }

    /// Closes a read-only file (also done on deinit).
    public func close() { abandon() }

    deinit { abandon() }

    // MARK: Writing

    public func writeDataset(_ name: String, shape: [Int], floats: [Float]) throws {
        try writeDataset(name, shape: shape, count: floats.count, fileType: chdf5_ieee_f32le(), memType: chdf5_native_float()) { p in
            floats.withUnsafeBytes { H5Dwrite(p, chdf5_native_float(), chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), $0.baseAddress) }
        }
    }

    public func writeDataset(_ name: String, shape: [Int], doubles: [Double]) throws {
        try writeDataset(name, shape: shape, count: doubles.count, fileType: chdf5_ieee_f64le(), memType: chdf5_native_double()) { p in
            doubles.withUnsafeBytes { H5Dwrite(p, chdf5_native_double(), chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), $0.baseAddress) }
        }
    }

    public func writeDataset(_ name: String, shape: [Int], int64s: [Int64]) throws {
        try writeDataset(name, shape: shape, count: int64s.count, fileType: chdf5_std_i64le(), memType: chdf5_native_int64()) { p in
            int64s.withUnsafeBytes { H5Dwrite(p, chdf5_native_int64(), chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), $0.baseAddress) }
        }
    }

    private func writeDataset(_ name: String, shape: [Int], count: Int, fileType: hid_t, memType: hid_t,
                              write: (hid_t) -> herr_t) throws {
        try requireOpen()
        guard !shape.isEmpty, shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == count else {
            throw err("dataset '\(name)': shape \(shape) does not hold \(count) values")
        }
        var dims = shape.map { hsize_t($0) }
        let space = H5Screate_simple(Int32(shape.count), &dims, nil)
        if space < 0 { throw err("H5Screate_simple failed for dataset '\(name)'") }
        defer { H5Sclose(space) }
        let dcpl = H5Pcreate(chdf5_p_dataset_create())
        if dcpl < 0 || H5Pset_obj_track_times(dcpl, false) < 0 { throw err("cannot create a dataset-creation property list") }
        defer { H5Pclose(dcpl) }
        let ds = H5Dcreate2(fid, name, fileType, space, chdf5_p_default(), dcpl, chdf5_p_default())
        if ds < 0 { throw err("cannot create dataset '\(name)' (exists already, or its group is missing)") }
        defer { H5Dclose(ds) }
        if count > 0, write(ds) < 0 { throw err("H5Dwrite failed for dataset '\(name)'") }
    }

    /// Creates a group (`/a`, `/a/b`); parents must exist.
    public func createGroup(_ name: String) throws {
        try requireOpen()
        let gcpl = H5Pcreate(chdf5_p_group_create())
        if gcpl < 0 || H5Pset_obj_track_times(gcpl, false) < 0 { throw err("cannot create a group-creation property list") }
        defer { H5Pclose(gcpl) }
        let g = H5Gcreate2(fid, name, chdf5_p_default(), gcpl, chdf5_p_default())
        if g < 0 { throw err("cannot create group '\(name)'") }
        H5Gclose(g)
    }

    public func setAttribute(_ name: String, double value: Double, on object: String = "/") throws {
        try setAttribute(name, on: object, fileType: chdf5_ieee_f64le(), memType: chdf5_native_double(), dims: nil) { a, t in
            withUnsafeBytes(of: value) { H5Awrite(a, t, $0.baseAddress) }
        }
    }

    public func setAttribute(_ name: String, int64 value: Int64, on object: String = "/") throws {
        try setAttribute(name, on: object, fileType: chdf5_std_i64le(), memType: chdf5_native_int64(), dims: nil) { a, t in
            withUnsafeBytes(of: value) { H5Awrite(a, t, $0.baseAddress) }
        }
    }

    public func setAttribute(_ name: String, doubles values: [Double], on object: String = "/") throws {
        try setAttribute(name, on: object, fileType: chdf5_ieee_f64le(), memType: chdf5_native_double(), dims: [values.count]) { a, t in
            values.withUnsafeBytes { H5Awrite(a, t, $0.baseAddress) }
        }
    }

    public func setAttribute(_ name: String, int64s values: [Int64], on object: String = "/") throws {
        try setAttribute(name, on: object, fileType: chdf5_std_i64le(), memType: chdf5_native_int64(), dims: [values.count]) { a, t in
            values.withUnsafeBytes { H5Awrite(a, t, $0.baseAddress) }
        }
    }

    /// A variable-length UTF-8 string attribute (h5py reads it as `str`).
    public func setAttribute(_ name: String, string value: String, on object: String = "/") throws {
        let t = try stringType()
        defer { H5Tclose(t) }
        try setAttribute(name, on: object, fileType: t, memType: t, dims: nil) { a, mt in
            value.withCString { cs in
                var p: UnsafePointer<CChar>? = cs
                return withUnsafeMutablePointer(to: &p) { H5Awrite(a, mt, UnsafeRawPointer($0)) }
            }
        }
    }

    private func stringType() throws -> hid_t {
        let t = H5Tcopy(chdf5_c_s1())
        if t < 0 { throw err("H5Tcopy failed") }
        if H5Tset_size(t, chdf5_variable()) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0 {
            H5Tclose(t)
            throw err("cannot make a UTF-8 string type")
        }
        return t
    }

    private func setAttribute(_ name: String, on object: String, fileType: hid_t, memType: hid_t, dims: [Int]?,
                              write: (hid_t, hid_t) -> herr_t) throws {
        try requireOpen()
        let obj = H5Oopen(fid, object, chdf5_p_default())
        if obj < 0 { throw err("no object '\(object)' to attach attribute '\(name)' to") }
        defer { H5Oclose(obj) }
        if H5Aexists(obj, name) > 0 { _ = H5Adelete(obj, name) }
        let space: hid_t
        if var d = dims.map({ $0.map { hsize_t($0) } }) {
            space = H5Screate_simple(1, &d, nil)
        } else {
            space = H5Screate(H5S_SCALAR)
        }
        if space < 0 { throw err("H5Screate failed for attribute '\(name)'") }
        defer { H5Sclose(space) }
        let a = H5Acreate2(obj, name, fileType, space, chdf5_p_default(), chdf5_p_default())
        if a < 0 { throw err("cannot create attribute '\(name)' on '\(object)'") }
        defer { H5Aclose(a) }
        if write(a, memType) < 0 { throw err("H5Awrite failed for attribute '\(name)' on '\(object)'") }
    }

    // MARK: Reading

    /// Whether a dataset or group exists at `name` (each path component is checked).
    public func exists(_ name: String) -> Bool {
        guard open else { return false }
        var prefix = ""
        for comp in name.split(separator: "/") {
            prefix += "/" + comp
            if H5Lexists(fid, prefix, chdf5_p_default()) <= 0 { return false }
        }
        return true
    }

    /// The shape of a dataset.
    public func shape(_ name: String) throws -> [Int] {
        let ds = try openDataset(name)
        defer { H5Dclose(ds) }
        return try shape(ofDataset: ds, name: name)
    }

    private func shape(ofDataset ds: hid_t, name: String) throws -> [Int] {
        let space = H5Dget_space(ds)
        if space < 0 { throw err("H5Dget_space failed for '\(name)'") }
        defer { H5Sclose(space) }
        let rank = H5Sget_simple_extent_ndims(space)
        if rank < 0 || rank > 32 { throw err("bad rank \(rank) of dataset '\(name)'") }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        if rank > 0, H5Sget_simple_extent_dims(space, &dims, nil) < 0 { throw err("cannot read the shape of '\(name)'") }
        return dims.map { Int(clamping: $0) }
    }

    private func openDataset(_ name: String) throws -> hid_t {
        try requireOpen()
        guard exists(name) else { throw FormatError(.missingLabel, file: path, "no dataset '\(name)'") }
        let ds = H5Dopen2(fid, name, chdf5_p_default())
        if ds < 0 { throw err("cannot open dataset '\(name)'") }
        return ds
    }

    public func readFloats(_ name: String) throws -> (shape: [Int], values: [Float]) {
        try read(name, memType: chdf5_native_float(), zero: Float(0))
    }

    public func readDoubles(_ name: String) throws -> (shape: [Int], values: [Double]) {
        try read(name, memType: chdf5_native_double(), zero: Double(0))
    }

    public func readInt64s(_ name: String) throws -> (shape: [Int], values: [Int64]) {
        try read(name, memType: chdf5_native_int64(), zero: Int64(0))
    }

    private func read<T>(_ name: String, memType: hid_t, zero: T) throws -> (shape: [Int], values: [T]) {
        let ds = try openDataset(name)
        defer { H5Dclose(ds) }
        let shape = try shape(ofDataset: ds, name: name)
        let count = try checkedCount(shape, of: ds, name: name)
        var values = [T](repeating: zero, count: count)
        if count > 0 {
            let r = values.withUnsafeMutableBytes { H5Dread(ds, memType, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), $0.baseAddress) }
            if r < 0 { throw err("cannot read dataset '\(name)' (corrupt, truncated, or not numeric)") }
        }
        return (shape, values)
    }

    /// The number of values of a dataset of `shape`, refused before anything is allocated when the file
    /// cannot hold them: a corrupt or hostile header must give an error, not a request for gigabytes.
    /// Unfiltered data occupy their full size in the file; filtered (compressed) data at most 1032 times
    /// less (deflate's best ratio); up to 1 MiB may be unallocated (read as the fill value).
    private func checkedCount(_ shape: [Int], of ds: hid_t, name: String) throws -> Int {
        var n = 1.0
        for d in shape { n *= Double(d) }
        let type = H5Dget_type(ds)
        let elementSize = type >= 0 ? Double(max(1, H5Tget_size(type))) : 1
        if type >= 0 { H5Tclose(type) }
        let dcpl = H5Dget_create_plist(ds)
        let filters = dcpl >= 0 ? H5Pget_nfilters(dcpl) : 0
        if dcpl >= 0 { H5Pclose(dcpl) }
        var stored = Double(H5Dget_storage_size(ds))
        if temporaryPath == nil {   // a file being written may not have reached the disk yet
            var st = stat()
            stored = min(stored, stat(path, &st) == 0 ? Double(st.st_size) : 0)
        }
        let holdable = max(Double(1 << 20), stored * (filters > 0 ? 1032 : 1))
        if n * elementSize > holdable {
            throw FormatError(.truncated, file: path, "dataset '\(name)' claims shape \(shape) (\(Int(min(n * elementSize, 9e18))) bytes), "
                              + "but the file holds \(Int(stored)) bytes of it\(filters > 0 ? " (compressed)" : "")")
        }
        return Int(n)
    }

    /// Reads the `index`-th (0-based) slab along the first axis of a float dataset (e.g. one reference
    /// volume of a K×d×d×d stack) without reading the rest.
    public func readFloatSlab(_ name: String, index: Int) throws -> (shape: [Int], values: [Float]) {
        let ds = try openDataset(name)
        defer { H5Dclose(ds) }
        let shape = try shape(ofDataset: ds, name: name)
        guard shape.count >= 2 else { throw err("dataset '\(name)' of shape \(shape) has no slabs") }
        guard (0..<shape[0]).contains(index) else {
            throw FormatError(.indexOutOfRange, file: path, "item \(index + 1) of dataset '\(name)' requested but it holds \(shape[0])")
        }
        let slabShape = Array(shape.dropFirst())
        let count = try checkedCount(shape, of: ds, name: name) / shape[0]
        let fspace = H5Dget_space(ds)
        if fspace < 0 { throw err("H5Dget_space failed for '\(name)'") }
        defer { H5Sclose(fspace) }
        var start = [hsize_t](repeating: 0, count: shape.count)
        start[0] = hsize_t(index)
        var cnt = shape.map { hsize_t($0) }
        cnt[0] = 1
        if H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, nil, &cnt, nil) < 0 { throw err("cannot select slab \(index) of '\(name)'") }
        var mdims = slabShape.map { hsize_t($0) }
        let mspace = H5Screate_simple(Int32(mdims.count), &mdims, nil)
        if mspace < 0 { throw err("H5Screate_simple failed") }
        defer { H5Sclose(mspace) }
        var values = [Float](repeating: 0, count: count)
        let r = values.withUnsafeMutableBytes { H5Dread(ds, chdf5_native_float(), mspace, fspace, chdf5_p_default(), $0.baseAddress) }
        if r < 0 { throw err("cannot read slab \(index) of dataset '\(name)'") }
        return (slabShape, values)
    }

    /// Names of the attributes of an object, in creation/name order.
    public func attributeNames(of object: String = "/") throws -> [String] {
        try requireOpen()
        let obj = H5Oopen(fid, object, chdf5_p_default())
        if obj < 0 { throw FormatError(.missingLabel, file: path, "no object '\(object)'") }
        defer { H5Oclose(obj) }
        var info = H5O_info_t()
        if H5Oget_info2(obj, &info, UInt32(H5O_INFO_NUM_ATTRS)) < 0 { throw err("H5Oget_info failed for '\(object)'") }
        var names: [String] = []
        for i in 0..<info.num_attrs {
            let n = H5Aget_name_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, chdf5_p_default())
            if n < 0 || n > 65536 { throw err("cannot list attributes of '\(object)'") }
            var buf = [CChar](repeating: 0, count: Int(n) + 1)
            if H5Aget_name_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, Int(n) + 1, chdf5_p_default()) < 0 {
                throw err("cannot list attributes of '\(object)'")
            }
            names.append(String(decoding: buf.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return names
    }

    public func hasAttribute(_ name: String, of object: String = "/") -> Bool {
        guard open else { return false }
        let obj = H5Oopen(fid, object, chdf5_p_default())
        if obj < 0 { return false }
        defer { H5Oclose(obj) }
        return H5Aexists(obj, name) > 0
    }

    public func attributeDoubles(_ name: String, of object: String = "/") throws -> [Double] {
        try readAttribute(name, of: object, memType: chdf5_native_double(), zero: 0.0)
    }

    public func attributeDouble(_ name: String, of object: String = "/") throws -> Double {
        let v = try attributeDoubles(name, of: object)
        guard v.count == 1 else { throw FormatError(.wrongType, file: path, "attribute '\(name)' of '\(object)' has \(v.count) values, expected 1") }
        return v[0]
    }

    public func attributeInt64s(_ name: String, of object: String = "/") throws -> [Int64] {
        try readAttribute(name, of: object, memType: chdf5_native_int64(), zero: Int64(0))
    }

    public func attributeInt64(_ name: String, of object: String = "/") throws -> Int64 {
        let v = try attributeInt64s(name, of: object)
        guard v.count == 1 else { throw FormatError(.wrongType, file: path, "attribute '\(name)' of '\(object)' has \(v.count) values, expected 1") }
        return v[0]
    }

    private func withAttribute<R>(_ name: String, of object: String, _ body: (hid_t) throws -> R) throws -> R {
        try requireOpen()
        let obj = H5Oopen(fid, object, chdf5_p_default())
        if obj < 0 { throw FormatError(.missingLabel, file: path, "no object '\(object)'") }
        defer { H5Oclose(obj) }
        guard H5Aexists(obj, name) > 0 else { throw FormatError(.missingLabel, file: path, "'\(object)' has no attribute '\(name)'") }
        let a = H5Aopen(obj, name, chdf5_p_default())
        if a < 0 { throw err("cannot open attribute '\(name)' of '\(object)'") }
        defer { H5Aclose(a) }
        return try body(a)
    }

    private func readAttribute<T>(_ name: String, of object: String, memType: hid_t, zero: T) throws -> [T] {
        try withAttribute(name, of: object) { a in
            let ftype = H5Aget_type(a)
            if ftype < 0 { throw err("cannot read the type of attribute '\(name)'") }
            defer { H5Tclose(ftype) }
            let cls = H5Tget_class(ftype)
            guard cls == H5T_INTEGER || cls == H5T_FLOAT else {
                throw FormatError(.wrongType, file: path, "attribute '\(name)' of '\(object)' is not numeric")
            }
            let space = H5Aget_space(a)
            if space < 0 { throw err("cannot read the shape of attribute '\(name)'") }
            defer { H5Sclose(space) }
            // Attribute values live uncompressed in the file: more than it holds is a corrupt header.
            let n = H5Sget_simple_extent_npoints(space)
            var st = stat()
            let fileSize = stat(temporaryPath ?? path, &st) == 0 ? Double(st.st_size) : 0
            if n < 0 || (n > 1 << 16 && Double(n) * Double(max(1, H5Tget_size(ftype))) > fileSize) {
                throw FormatError(.truncated, file: path, "attribute '\(name)' of '\(object)' claims \(n) values, more than the file holds")
            }
            var v = [T](repeating: zero, count: Int(n))
            if n > 0 {
                let r = v.withUnsafeMutableBytes { H5Aread(a, memType, $0.baseAddress) }
                if r < 0 { throw err("cannot read attribute '\(name)' of '\(object)'") }
            }
            return v
        }
    }

    /// A string attribute, fixed-length or variable-length.
    public func attributeString(_ name: String, of object: String = "/") throws -> String {
        try withAttribute(name, of: object) { a in
            let ftype = H5Aget_type(a)
            if ftype < 0 { throw err("cannot read the type of attribute '\(name)'") }
            defer { H5Tclose(ftype) }
            guard H5Tget_class(ftype) == H5T_STRING else {
                throw FormatError(.wrongType, file: path, "attribute '\(name)' of '\(object)' is not a string")
            }
            let space = H5Aget_space(a)
            defer { if space >= 0 { H5Sclose(space) } }
            guard space >= 0, H5Sget_simple_extent_npoints(space) == 1 else {
                throw FormatError(.wrongType, file: path, "attribute '\(name)' of '\(object)' is not a single string")
            }
            if H5Tis_variable_str(ftype) > 0 {
                let mt = try stringType()
                defer { H5Tclose(mt) }
                var p: UnsafeMutablePointer<CChar>? = nil
                let r = withUnsafeMutablePointer(to: &p) { H5Aread(a, mt, UnsafeMutableRawPointer($0)) }
                if r < 0 { throw err("cannot read string attribute '\(name)'") }
                guard let p else { return "" }
                defer { H5free_memory(p) }
                return String(cString: p)
            }
            let size = H5Tget_size(ftype)
            if size == 0 || size > 1 << 20 { throw err("bad string size of attribute '\(name)'") }
            var buf = [UInt8](repeating: 0, count: size + 1)
            let r = buf.withUnsafeMutableBytes { H5Aread(a, ftype, $0.baseAddress) }
            if r < 0 { throw err("cannot read string attribute '\(name)'") }
            let end = buf.firstIndex(of: 0) ?? size
            return String(decoding: buf[..<end], as: UTF8.self).trimmingCharacters(in: .whitespaces)
        }
    }

    // MARK: Helpers

    private func requireOpen() throws {
        guard open else { throw FormatError(.hdf5, file: path, "file is closed") }
    }

    private func err(_ message: String) -> FormatError { FormatError(.hdf5, file: path, message) }
}
