import Volumes

/// `LocalSearch` (Volumes) is the implementation of local-search candidates the Engine uses.
extension LocalSearch: OrientationCandidateSource {}
