import CFFTW

/// A fixed-size, 32-byte-aligned, zero-initialised buffer of trivial elements (Float, Complex<Float>,
/// Double …: never a type with references), owned by this object.
///
/// FFTW's new-array execute functions need arrays with the alignment the plan was made with; every
/// buffer that reaches an FFT in a hot path is one of these (Swift arrays only promise 16 bytes).
public final class AlignedBuffer<Element>: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Element>

    public init(count: Int) {
        precondition(count >= 0)
        self.count = count
        let bytes = max(1, count * MemoryLayout<Element>.stride)
        guard let raw = fftwf_malloc(bytes) else { fatalError("out of memory allocating \(bytes) bytes") }
        precondition(Int(bitPattern: raw) % 32 == 0, "fftwf_malloc returned a misaligned block")
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        pointer = raw.bindMemory(to: Element.self, capacity: max(1, count))
    }

    deinit { fftwf_free(pointer) }

    public var buffer: UnsafeMutableBufferPointer<Element> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    @inlinable
    public subscript(i: Int) -> Element {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    public func fill(with value: Element) { pointer.update(repeating: value, count: count) }

    public func copy(from source: UnsafeBufferPointer<Element>) {
        precondition(source.count == count, "copy of \(source.count) elements into a buffer of \(count)")
        if count > 0 { pointer.update(from: source.baseAddress!, count: count) }
    }

    public func toArray() -> [Element] { Array(buffer) }
}
