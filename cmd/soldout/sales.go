package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"

	"soldout/internal/journal"
	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

const salesListSynopsis = `Lists the sales in the journal, newest first: who bought which artwork, when
and for how much, and in which state — held while a delayed payment is on its
way, sold, released when it failed, double_sale when the buyer paid for a piece
another session holds. Every double sale is listed again with both sessions,
so that one buyer can be refunded in the Stripe Dashboard.

Examples:
  soldout sales list -state double_sale    the buyers to refund
  soldout sales list -artwork art-42`

func runSales(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "sales", map[string]command{
		"list": {"list sales and double sales", runSalesList},
	}, args, getenv, stdout, stderr)
}

var saleStates = []stock.SaleState{stock.SaleHeld, stock.SaleSold, stock.SaleReleased, stock.SaleDoubleSale}

// salesSettings: sales list only reads the journal.
const salesSettings = useJournal

func runSalesList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sales list", flag.ContinueOnError)
	fs.SetOutput(stdout)
	flags := sharedFlags(fs, "database-url")
	state := fs.String("state", "", "only sales in this state: held, sold, released or double_sale")
	artwork := fs.String("artwork", "", "only sales of this artwork id")
	limit := fs.Int("limit", 0, "at most this many sales (0: all)")
	asJSON := jsonFlag(fs)
	fs.Usage = commandUsage(stdout, "sales list [flags]", salesListSynopsis, fs.PrintDefaults, salesSettings)
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	switch {
	case *state != "" && !slices.Contains(saleStates, stock.SaleState(*state)):
		return flagError(fs, fmt.Sprintf("-state %q: use held, sold, released or double_sale", *state))
	case *limit < 0:
		return flagError(fs, "-limit must not be negative")
	}
	db, err := openJournal(ctx, flags, getenv, salesSettings)
	if err != nil {
		return err
	}
	defer db.Close()
	filter := journal.SaleFilter{State: stock.SaleState(*state), ArtworkID: *artwork}
	if *limit > 0 {
		filter.Limit = *limit + 1 // one more than shown tells whether the list was cut
	}
	sales, err := db.ListSales(ctx, filter)
	if err != nil {
		return err
	}
	cut := *limit > 0 && len(sales) > *limit
	if cut {
		sales = sales[:*limit]
	}
	holders, err := doubleSaleHolders(ctx, db, sales)
	if err != nil {
		return err
	}
	payments, err := doubleSalePayments(ctx, db, sales)
	if err != nil {
		return err
	}
	if *asJSON {
		views := make([]saleView, len(sales))
		for i, s := range sales {
			views[i] = viewSale(s)
			if s.State == stock.SaleDoubleSale {
				views[i].Holder = viewSalePtr(holders[s.ArtworkID])
				views[i].Payment = payments[saleKey(s)]
			}
		}
		return printJSON(stdout, views)
	}
	if len(sales) == 0 {
		fmt.Fprintf(stdout, "no sales match (journal: %s)\n", db.Kind())
		return nil
	}
	printSales(stdout, sales)
	printDoubleSales(stdout, sales, holders, payments)
	if cut {
		fmt.Fprintf(stdout, "\nthe newest %d shown; there are more (-limit 0 shows all, -state double_sale every double sale).\n", *limit)
	}
	return nil
}

// doubleSaleHolders finds, for the artwork of every double sale, the session
// that holds it now (nil if none does any more).
func doubleSaleHolders(ctx context.Context, db *journal.DB, sales []stock.Sale) (map[string]*stock.Sale, error) {
	holders := make(map[string]*stock.Sale)
	for _, s := range sales {
		if _, done := holders[s.ArtworkID]; done || s.State != stock.SaleDoubleSale {
			continue
		}
		rows, err := db.Sales(ctx, s.ArtworkID)
		if err != nil {
			return nil, err
		}
		_, holders[s.ArtworkID] = stock.FindSales(rows, s.SessionID)
	}
	return holders, nil
}

func printSales(w io.Writer, sales []stock.Sale) {
	tw := newTable(w)
	fmt.Fprintln(tw, "CREATED\tARTWORK\tSESSION\tSTATE\tEMAIL\tAMOUNT\tEVENTS")
	for _, s := range sales {
		state := string(s.State)
		if s.State.Active() && s.AppliedRev == "" {
			state += " (Sanity write pending)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", formatTime(s.CreatedAt), s.ArtworkID, s.SessionID, state,
			orDash(s.Email), formatAmount(s.Amount, s.Currency), len(s.EventIDs))
	}
	tw.Flush()
}

// Payments of a double-sale buyer, as their session's events tell.
const (
	paymentPaid    = "paid"
	paymentPending = "delayed payment pending"
	paymentFailed  = "payment failed: owes nothing"
	paymentUnknown = "payment unknown: check it in the Stripe Dashboard"
)

func saleKey(s stock.Sale) string { return s.ArtworkID + "\x00" + s.SessionID }

// doubleSalePayments tells, for every double sale, whether its buyer paid,
// from the newest of their session's events that says: who to refund
// depends on it.
func doubleSalePayments(ctx context.Context, db *journal.DB, sales []stock.Sale) (map[string]string, error) {
	payments := make(map[string]string)
	events := make(map[string][]stock.EventRecord) // by artwork, newest first
	for _, s := range sales {
		if s.State != stock.SaleDoubleSale {
			continue
		}
		evs, ok := events[s.ArtworkID]
		if !ok {
			var err error
			if evs, err = db.ListEvents(ctx, journal.EventFilter{ArtworkID: s.ArtworkID}); err != nil {
				return nil, err
			}
			events[s.ArtworkID] = evs
		}
		payment, err := paymentOf(ctx, db, evs, s.SessionID)
		if err != nil {
			return nil, err
		}
		payments[saleKey(s)] = payment
	}
	return payments, nil
}

func paymentOf(ctx context.Context, db *journal.DB, evs []stock.EventRecord, session string) (string, error) {
	for _, e := range evs {
		if e.SessionID != session {
			continue
		}
		switch e.Type {
		case stock.CheckoutAsyncFailed:
			return paymentFailed, nil
		case stock.CheckoutAsyncSucceeded:
			return paymentPaid, nil
		case stock.CheckoutCompleted:
			full, err := db.Event(ctx, e.ID)
			if err != nil {
				return "", err
			}
			ev, err := stripehook.Decode(full.Payload)
			switch {
			case err != nil: // a success-page event, say: not Stripe's shape
			case ev.Session.PaymentStatus == stock.PaymentUnpaid:
				return paymentPending, nil
			default:
				return paymentPaid, nil
			}
		}
	}
	return paymentUnknown, nil
}

func printDoubleSales(w io.Writer, sales []stock.Sale, holders map[string]*stock.Sale, payments map[string]string) {
	if len(holders) == 0 {
		return
	}
	fmt.Fprintln(w, "\nDouble sales: more than one buyer for one piece. Keep one buyer who paid and refund the\nothers in the Stripe Dashboard (Payments, search the email); `soldout reconcile` tells,\nbuyer by buyer:")
	tw := newTable(w)
	fmt.Fprintln(tw, "ARTWORK\tSESSION\tROLE\tEMAIL\tAMOUNT\tCHECKED OUT")
	row := func(s stock.Sale, role string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ArtworkID, s.SessionID, role, orDash(s.Email), formatAmount(s.Amount, s.Currency), formatTime(s.CreatedAt))
	}
	shown := map[string]bool{}
	for _, s := range sales {
		if s.State != stock.SaleDoubleSale || shown[s.ArtworkID] {
			continue
		}
		shown[s.ArtworkID] = true
		if h := holders[s.ArtworkID]; h != nil {
			row(*h, "holds it ("+string(h.State)+")")
		} else {
			// A failed hold kept the piece for the buyers who wait for it.
			fmt.Fprintf(tw, "%s\t-\tnobody holds it: kept for the buyers below\t-\t-\t-\n", s.ArtworkID)
		}
		for _, o := range sales {
			if o.ArtworkID == s.ArtworkID && o.State == stock.SaleDoubleSale {
				row(o, "checked out too, "+payments[saleKey(o)])
			}
		}
	}
	tw.Flush()
}
