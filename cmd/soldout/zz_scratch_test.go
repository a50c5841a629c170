package main

import (
	"testing"
	"time"

	"soldout/internal/stripeapi/stripetest"
)

func TestScratchShow(t *testing.T) {
	o := startShop(t)
	o.artwork("art-1", true)
	o.artwork("art-2", true)
	o.sell("paid", "art-1", "cs_alice", "sold")
	o.sell("paid", "art-1", "cs_bob", "double_sale")
	o.sell("unpaid", "art-2", "cs_sepa", "held")
	g, _ := o.trigger("paid", "art-ghost", "cs_ghost")
	o.stripe.Put(stripetest.Session{ID: "cs_lost", Status: "complete", PaymentStatus: "paid", Email: "lost@example.com", AmountTotal: 90000, Currency: "eur", Metadata: map[string]string{"artworkId": "art-2"}, Created: time.Now().Add(-time.Hour)})
	for _, args := range [][]string{{"events", "list"}, {"events", "show", g.EventID}, {"sales", "list"}, {"replay", g.EventID}, {"reconcile"}, {"reconcile", "-apply"}, {"check"}, {"trigger", "-url", o.srv.url + "/api/webhook", "-artwork", "art-2"}} {
		out, errOut, code := o.soldout(args...)
		t.Logf("$ soldout %v  (exit %d)\n%s--- stderr:\n%s", args, code, out, errOut)
	}
}
