import Testing

@Suite struct EndToEndSmokeTests {
    @Test func builds() { #expect(1 + 1 == 2) }
}
