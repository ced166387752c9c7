/// Types of the metadata labels ml_tomo and RELION use, and the aliases accepted on reading (spec §3.1).
///
/// A column whose label is known here is converted to that type on reading, and a value that does not
/// fit is an error at its line. Unknown labels are kept (round trip) and typed by inference: integer if
/// every value is an integer, real if every value is a number, string otherwise.
public enum MetaDataLabels {
    public static let types: [String: MetaDataType] = {
        var t: [String: MetaDataType] = [:]
        for l in ["image", "missingRegionType", "imageMetaData", "referenceMetaData", "comment", "micrograph",
                  "fileName", "imageRef", "mask", "symmetry"] { t[l] = .string }
        for l in ["enabled", "missingRegionNumber", "ref", "iterationNumber", "itemId", "classCount",
                  "ref3d", "order_", "flip", "micrographId", "objId"] { t[l] = .int }
        for l in ["angleRot", "angleTilt", "anglePsi", "shiftX", "shiftY", "shiftZ", "logLikelihood",
                  "missingRegionThetaX0", "missingRegionThetaXF", "missingRegionThetaY0", "missingRegionThetaYF",
                  "weight", "signalChange", "pMax", "sigmaNoise", "sigmaOffset", "resolutionFreqFourier",
                  "resolutionFRC", "maxCC", "maxProbability", "sumWeight", "scale", "samplingRate",
                  "classFraction", "resolution"] { t[l] = .real }
        // RELION 3.1 labels we read or write.
        for l in ["rlnImageName", "rlnMicrographName", "rlnOpticsGroupName", "rlnReferenceImage", "rlnCtfImage"] { t[l] = .string }
        for l in ["rlnOpticsGroup", "rlnClassNumber", "rlnImageDimensionality", "rlnImageSize", "rlnRandomSubset",
                  "rlnGroupNumber", "rlnNrOfSignificantSamples"] { t[l] = .int }
        for l in ["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi", "rlnOriginXAngst", "rlnOriginYAngst",
                  "rlnOriginZAngst", "rlnImagePixelSize", "rlnVoltage", "rlnSphericalAberration",
                  "rlnAmplitudeContrast", "rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ",
                  "rlnLogLikeliContribution", "rlnMaxValueProbDistribution", "rlnOriginX", "rlnOriginY",
                  "rlnOriginZ", "rlnDetectorPixelSize", "rlnMagnification"] { t[l] = .real }
        return t
    }()

    /// Alternative spellings accepted on reading, mapped to the canonical label (spec §3.1).
    public static let aliases: [String: String] = [
        "Wedge": "missingRegionNumber",
        "rot": "angleRot", "tilt": "angleTilt", "psi": "anglePsi",
        "Xoff": "shiftX", "Yoff": "shiftY", "Zoff": "shiftZ",
        "Ref": "ref",
    ]

    /// The canonical label for `label` (itself when it is not an alias).
    public static func canonical(_ label: String) -> String { aliases[label] ?? label }
}
