package httpapi

import (
	"log/slog"
	"net/http"
	"strings"

	"soldout/internal/stock"
)

// allowOrigins lets the storefront's pages, and only them, call h from a
// browser. An allowed Origin gets Access-Control-Allow-Origin, and its
// preflights (a JSON POST needs one) are answered here, before the rate
// limit. A POST from any other site is refused: a form post needs no
// preflight, so without this check any web page could make its visitors'
// browsers reserve the shop's pieces, each from its own IP. Requests
// without an Origin (curl, servers) pass. A page served from soldout's own
// host (the shop proxying /api to it) is listed like any other: taking the
// Host header's word for "own origin" would let a DNS-rebinding page pass.
func allowOrigins(cfg Config, h http.Handler) http.Handler {
	allowed := make(map[string]bool, len(cfg.AllowedOrigins))
	for _, o := range cfg.AllowedOrigins {
		allowed[strings.ToLower(o)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Answers differ by Origin: caches must not serve one site's to another.
		w.Header().Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		ok := allowed[strings.ToLower(origin)]
		if ok {
			w.Header().Set("Access-Control-Allow-Origin", origin)
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if ok {
				w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
				w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
				w.Header().Set("Access-Control-Max-Age", "600")
			}
			// Without the headers above the browser does not send the request.
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.Method == http.MethodPost && origin != "" && !ok {
			// A typo in the setting looks like this too: every Buy and every
			// success page failing. Another site's page posting does as well.
			cfg.refusals.Log(r.Context(), slog.LevelWarn, "origin:"+truncated(origin), "browser POST refused: its origin is not in SOLDOUT_ALLOWED_ORIGINS; if it is the shop's own page, add it there exactly (scheme, host, port) and restart",
				"origin", truncated(origin), "path", r.URL.Path, "remote", r.RemoteAddr)
			writeError(w, stock.Errorf(stock.Invalid, "origin %.100q may not call soldout from a browser: list it in SOLDOUT_ALLOWED_ORIGINS", origin))
			return
		}
		h.ServeHTTP(w, r)
	})
}
