package stock

import "strings"

// CurrencyExponent is how many decimals currency's minor unit has in Stripe's
// amounts: 2 for most currencies, 0 for zero-decimal ones such as JPY, 3 for
// BHD, JOD, KWD, OMR and TND.
func CurrencyExponent(currency string) int {
	switch c := strings.ToLower(currency); {
	case zeroDecimal[c]:
		return 0
	case threeDecimal[c]:
		return 3
	}
	return 2
}
