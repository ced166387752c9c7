import Engine
import Volumes

/// Per-particle results as flat float64 records of `doublesPerResult` values (global index, rot, tilt,
/// psi, shift x, y, z, class, log-likelihood, max probability, region, half-set): the layout of the
/// results gathered to rank 0 and of the restart dataset. Doubles hold the integers exactly.
public enum ResultCodec {
    public static let doublesPerResult = 12

    public static func values(_ results: [ParticleResult]) -> [Double] {
        var values: [Double] = []
        values.reserveCapacity(results.count * doublesPerResult)
        for r in results {
            values += [Double(r.globalIndex), r.angles.rot, r.angles.tilt, r.angles.psi, r.shift.x, r.shift.y, r.shift.z,
                       Double(r.classNumber), r.logLikelihood, r.maxProbability, Double(r.regionNumber), Double(r.halfSet)]
        }
        return values
    }

    public static func results<C: RandomAccessCollection<Double>>(from values: C) -> [ParticleResult] where C.Index == Int {
        (0 ..< values.count / doublesPerResult).map { i in
            let v = values.startIndex + i * doublesPerResult
            return ParticleResult(globalIndex: Int(values[v]), angles: EulerAngles(rot: values[v + 1], tilt: values[v + 2], psi: values[v + 3]),
                                  shift: SIMD3(values[v + 4], values[v + 5], values[v + 6]), classNumber: Int(values[v + 7]),
                                  logLikelihood: values[v + 8], maxProbability: values[v + 9], regionNumber: Int(values[v + 10]),
                                  halfSet: Int(values[v + 11]))
        }
    }
}
