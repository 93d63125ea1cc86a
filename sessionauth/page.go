package sessionauth

// The one page session_auth shows itself: why signing in did not work, with
// a way back (the sign-in pages are the provider's).

import (
	"html/template"
	"net/http"
)

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title></head>
<body><main><h1>{{.Title}}</h1><p>{{.Message}}</p><p><a href="{{.Back}}">Start again</a></p></main></body></html>
`))

// writePage shows a page with the pages' headers: no script, no framing,
// no caching, no referrer.
func writePage(w http.ResponseWriter, status int, title, message, back string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = page.Execute(w, struct{ Title, Message, Back string }{title, message, back})
}
