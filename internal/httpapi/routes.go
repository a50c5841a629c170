package httpapi

import "net/http"

// addRoutes is soldout's whole HTTP API on one screen.
func addRoutes(mux *http.ServeMux, cfg Config) {
	mux.Handle("POST /api/webhook", handleWebhook(cfg))
	mux.Handle("/api/webhook", methodNotAllowed("POST"))
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(cfg.Journal))
}

func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "use " + allow, Code: "method_not_allowed"})
	})
}
