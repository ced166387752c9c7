import Testing

@Suite struct VolumesSmokeTests {
    @Test func builds() { #expect(1 + 1 == 2) }
}
