package web

// RFC 8628 §3.3.1: verification_uri_complete as a QR code a device can show.

import (
	"image"
	"image/color"
	"image/png"
	"net/http"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/token"
	"github.com/yeqown/go-qrcode/v2"
)

// ServeDeviceQR draws verification_uri_complete for a user code as a PNG
// QR code that a device can show. It looks nothing up, so it reveals
// nothing about which codes exist.
func (s *Service) ServeDeviceQR(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		oauth.WriteError(w, oauth.MethodNotAllowed(w, http.MethodGet, http.MethodHead))
		return
	}
	code, ok := token.NormalizeUserCode(r.URL.Query().Get("user_code"))
	if !ok {
		oauth.WriteError(w, oauth.ErrInvalidRequest("user_code must be a code like WDJB-MJHT"))
		return
	}
	qr, err := qrcode.NewWith(s.endpointURL(PathDevice)+"?user_code="+token.FormatUserCode(code),
		qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionMedium))
	if err != nil {
		oauth.WriteError(w, s.failures.Internal("encoding a QR code", err))
		return
	}
	pw := &pngWriter{scale: 8, quiet: 4}
	if err := qr.Save(pw); err != nil {
		oauth.WriteError(w, s.failures.Internal("drawing a QR code", err))
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	_ = png.Encode(w, pw.img)
}

// pngWriter renders the QR library's module matrix as a black-on-white
// image: scale pixels per module and a quiet zone of quiet modules.
type pngWriter struct {
	scale, quiet int
	img          *image.Paletted
}

func (p *pngWriter) Write(m qrcode.Matrix) error {
	side := (m.Width() + 2*p.quiet) * p.scale
	p.img = image.NewPaletted(image.Rect(0, 0, side, side), color.Palette{color.White, color.Black})
	m.Iterate(qrcode.IterDirection_ROW, func(x, y int, v qrcode.QRValue) {
		if !v.IsSet() {
			return
		}
		x0, y0 := (x+p.quiet)*p.scale, (y+p.quiet)*p.scale
		for dy := range p.scale {
			for dx := range p.scale {
				p.img.SetColorIndex(x0+dx, y0+dy, 1)
			}
		}
	})
	return nil
}

func (p *pngWriter) Close() error { return nil }
