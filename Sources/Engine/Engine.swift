/// The ML model and the EM iteration. Pure computation: no MPI, no file names.
public enum EngineInfo {
    public static let moduleName = "Engine"
}
