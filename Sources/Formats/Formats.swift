/// File formats of ml_tomo: Xmipp metadata, RELION STAR, MRC, Spider, HDF5 stacks.
public enum FormatsInfo {
    public static let moduleName = "Formats"
}
