package stock

// FindSales returns, among an artwork's sale rows, the row of session (nil
// if none) and the active row of another session (nil if none): the two the
// rules decide on, for callers outside this package (reconciliation, the
// operator's listings).
func FindSales(sales []Sale, session string) (own, active *Sale) {
	return findSales(sales, session)
}
