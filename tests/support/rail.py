"""The rail dispute's two-claim story and its sentences, for the tests that need a
claim added later or a sentence dropped (test_scan, test_change_flags)."""

STRIKE = """  - id: strike-this-week
    statements:
      en: The GDL union is striking nationwide this week, halting passenger and freight trains.
      de: Die GDL bestreikt diese Woche bundesweit den Personen- und Güterverkehr der Bahn.
"""
REFUSES = """  - id: railway-refuses
    statements:
      en: Deutsche Bahn refuses a shorter working week, saying it cannot afford it.
"""
REFUSAL_EN = (
    "Deutsche Bahn again rejected the union's demand for a 35-hour week, saying it could "
    "not afford to pay drivers the same for fewer hours."
)
REFUSAL_DE = (
    "Die Bahn lehnt die Forderung nach einer kürzeren Arbeitswoche weiter ab; sie sei "
    "nicht finanzierbar, sagte ein Sprecher."
)
STRIKING_DE = (
    "Die Lokführergewerkschaft GDL streikt seit Mittwoch bundesweit, Personen- und "
    "Güterzüge stehen still."
)
