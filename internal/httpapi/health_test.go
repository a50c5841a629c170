package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type downJournal struct{}

func (downJournal) Ping(context.Context) error {
	return errors.New("failed to connect to `user=soldout_app database=shop_prod`: 10.0.0.7:5432: dial error")
}

// /readyz is public: a journal that does not answer makes it 503, and the
// error, which may name the database, its user and its host, goes to the
// log only.
func TestReadyzKeepsTheJournalErrorToTheLog(t *testing.T) {
	var logs strings.Builder
	h := handleReadyz(slog.New(slog.NewTextHandler(&logs, nil)), downJournal{}, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || strings.Contains(rec.Body.String(), "shop_prod") || !strings.Contains(rec.Body.String(), "journal unavailable") {
		t.Errorf("readyz: %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(logs.String(), "shop_prod") {
		t.Errorf("the journal's error is not in the log: %s", logs.String())
	}
}
