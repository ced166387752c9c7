// swift-tools-version: 6.1
// ml_tomo: maximum-likelihood alignment and classification of subtomograms, MPI-distributed.
// Targets, what each owns and the dependencies that must never exist: docs/ARCHITECTURE.md.
import Foundation
import PackageDescription

let package = Package(
    name: "ml_tomo",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "ml_tomo", targets: ["MLTomoCLI"]),
        .library(name: "Volumes", targets: ["Volumes"]),
        .library(name: "Formats", targets: ["Formats"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "Distributed", targets: ["Distributed"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.5.0"),
        // HTML of `ml_tomo report` (escaping and structure by a library, not string concatenation).
        .package(url: "https://github.com/JohnSundell/Plot.git", from: "0.14.0"),
    ],
    targets: [
        // C shims over the system libraries (module.modulemap + shim.h, no unsafe flags).
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "CFFTW", pkgConfig: "fftw3f", providers: [.apt(["libfftw3-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CMalloc"),

        .target(name: "Volumes", dependencies: [
            "CFFTW",
            .product(name: "Numerics", package: "swift-numerics"),
        ]),
        .target(name: "Formats", dependencies: ["Volumes", "CHDF5"], exclude: ["HDF5-LAYOUT.md"]),
        .target(name: "Engine", dependencies: [
            "Volumes",
            .product(name: "Numerics", package: "swift-numerics"),
        ], exclude: ["DEVIATIONS.md"]),
        .target(name: "Distributed", dependencies: ["CMPI", "Engine", "Volumes"]),
        // Instrumentation kept out of the algorithm: kernel timing (the cost model's units) and the
        // benchmark workloads of `ml_tomo bench`.
        .target(name: "Diagnostics", dependencies: [
            "Volumes", "Formats", "Engine",
            .product(name: "Numerics", package: "swift-numerics"),
        ]),
        .target(name: "Simulation", dependencies: [
            "Volumes", "Formats",
            .product(name: "Numerics", package: "swift-numerics"),
        ]),
        .executableTarget(name: "MLTomoCLI", dependencies: [
            "Volumes", "Formats", "Engine", "Distributed", "Simulation", "Diagnostics", "CMalloc",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Plot", package: "Plot"),
        ]),

        .testTarget(name: "VolumesTests", dependencies: ["Volumes"]),
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "Volumes"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Volumes"]),
        .testTarget(name: "DistributedTests", dependencies: ["Distributed", "Engine", "Volumes"]),
        .testTarget(name: "DiagnosticsTests", dependencies: ["Diagnostics"]),
        .testTarget(name: "SimulationTests", dependencies: ["Simulation", "Formats", "Volumes"]),
        // Launches the built `ml_tomo` (mpirun with 1, 2, 3 ranks) and the Python readers.
        .testTarget(name: "EndToEndTests", dependencies: ["Formats", "Volumes"]),
    ]
)

// libFuzzer targets for the file readers (issue 20), only when ML_TOMO_FUZZ is set, so that ordinary builds
// and `swift test` never see them (they have no `main`: libFuzzer supplies it). Built and run by
// `Fuzz/run.sh`, which passes `--sanitize=fuzzer --sanitize=address`.
if ProcessInfo.processInfo.environment["ML_TOMO_FUZZ"] != nil {
    package.targets.append(.target(name: "FuzzSupport", path: "Fuzz/Sources/FuzzSupport"))
    for name in ["FuzzMetaData", "FuzzMRC", "FuzzSpider", "FuzzHDF5"] {
        package.targets.append(.executableTarget(name: name, dependencies: ["Formats", "FuzzSupport"],
                                                 path: "Fuzz/Sources/\(name)"))
        package.products.append(.executable(name: name, targets: [name]))
    }
}
