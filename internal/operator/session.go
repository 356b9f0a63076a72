package operator

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/operator/view"
)

const (
	sessionCookie = "paved_session"
	// loginCookie carries the sign-in form's double-submit CSRF secret.
	loginCookie  = "paved_login"
	maxFormBytes = 64 << 10
)

// session is a signed-in operator: the name and the cookie that proves it.
type session struct{ name, value string }

// mac is HMAC-SHA256 of purpose|value under the session key; the purpose
// keeps a value signed for one use from passing for another.
func (u *ui) mac(purpose, value string) string {
	m := hmac.New(sha256.New, u.cfg.SessionKey)
	m.Write([]byte(purpose + "|" + value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrf is the hidden form field every signed-in POST must carry.
func (u *ui) csrf(s session) string { return u.mac("csrf", s.value) }

// newSession signs name|expiry; the cookie holds name|expiry|signature.
// The expiry is inside the signature: the cookie's own Max-Age is only a
// hint to the browser.
func (u *ui) newSession(name string) string {
	payload := name + "|" + strconv.FormatInt(u.cfg.Now().Add(u.cfg.SessionTTL).Unix(), 10)
	return payload + "|" + u.mac(u.sessionPurpose(name), payload)
}

// sessionPurpose binds a session to its operator's current token, so that
// a new token (one leaked, one rotated) ends the sessions of the old one.
func (u *ui) sessionPurpose(name string) string {
	sum := sha256.Sum256([]byte(u.cfg.Operators[name]))
	return "session|" + base64.RawURLEncoding.EncodeToString(sum[:8])
}

// session returns the request's operator if its cookie is genuine, unexpired
// and names an operator who still has a token.
func (u *ui) session(r *http.Request) (session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	i := strings.LastIndexByte(c.Value, '|')
	if i < 0 {
		return session{}, false
	}
	payload, sig := c.Value[:i], c.Value[i+1:]
	name, expText, ok := strings.Cut(payload, "|")
	if !ok || !hmac.Equal([]byte(sig), []byte(u.mac(u.sessionPurpose(name), payload))) {
		return session{}, false
	}
	exp, err := strconv.ParseInt(expText, 10, 64)
	if err != nil || !u.cfg.Now().Before(time.Unix(exp, 0)) {
		return session{}, false
	}
	if _, known := u.cfg.Operators[name]; !known {
		return session{}, false
	}
	return session{name: name, value: c.Value}, true
}

// setCookie sets one of the page's cookies; maxAge 0 lasts the browser
// session, a negative one deletes the cookie.
func (u *ui) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/ui/", MaxAge: maxAge, HttpOnly: true, Secure: u.cfg.SecureCookie, SameSite: http.SameSiteStrictMode})
}

// crossSite reports a request a browser sent on another site's behalf:
// Fetch Metadata says so, or the Origin is neither this host nor paved's
// public one (a proxy in front may rewrite Host).
func (u *ui) crossSite(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return true
	}
	if o := r.Header.Get("Origin"); o != "" {
		p, err := url.Parse(o)
		if err != nil || !(strings.EqualFold(p.Host, r.Host) || (u.cfg.PublicHost != "" && strings.EqualFold(p.Host, u.cfg.PublicHost))) {
			return true
		}
	}
	return false
}

// refused tells the metrics why a caller was refused.
func (u *ui) refused(reason string) {
	if u.cfg.OnAuthFailure != nil {
		u.cfg.OnAuthFailure(reason)
	}
}

// formValue reads a POST form field with the body capped.
func formValue(w http.ResponseWriter, r *http.Request, key string) string {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	return r.PostFormValue(key)
}

type authed func(w http.ResponseWriter, r *http.Request, s session)

// guard runs h for a signed-in operator; anyone else gets refuse.
func (u *ui) guard(refuse http.HandlerFunc, h authed) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok := u.session(r)
		if !ok {
			refuse(w, r)
			return
		}
		h(w, r, s)
	}
}

// toLogin refuses an HTML page: the browser goes to sign in.
func toLogin(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// unauthorized refuses what is not a page (the log stream).
func unauthorized(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "sign in at /ui/login first", http.StatusUnauthorized)
}

// post guards a signed-in form: same origin, a session, and its CSRF field.
func (u *ui) post(h authed) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if u.crossSite(r) {
			u.refused("cross_site")
			u.message(w, nil, http.StatusForbidden, "Refused", "A request from another site may not change anything here.")
			return
		}
		s, ok := u.session(r)
		if !ok {
			u.loginPage(w, r, http.StatusUnauthorized, "Sign in to continue.")
			return
		}
		if subtle.ConstantTimeCompare([]byte(formValue(w, r, "csrf")), []byte(u.csrf(s))) != 1 {
			u.refused("bad_csrf")
			u.message(w, &s, http.StatusForbidden, "Refused", "The form's CSRF token is missing or wrong: reload the page and try again.")
			return
		}
		h(w, r, s)
	}
}

// loginPage renders the sign-in form with a double-submit secret: a cookie,
// and its MAC in the form.
func (u *ui) loginPage(w http.ResponseWriter, r *http.Request, status int, problem string) {
	secret := ""
	if c, err := r.Cookie(loginCookie); err == nil && validLoginSecret(c.Value) {
		secret = c.Value // keep it, so that sign-in forms open in other tabs still work
	} else {
		var b [16]byte
		_, _ = rand.Read(b[:])
		secret = base64.RawURLEncoding.EncodeToString(b[:])
		u.setCookie(w, loginCookie, secret, 0)
	}
	u.render(w, status, view.Page{Title: "Sign in", CSRF: u.mac("login", secret), Data: view.Login{Problem: problem}})
}

func validLoginSecret(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == 16
}

func (u *ui) loginForm(w http.ResponseWriter, r *http.Request) {
	if _, ok := u.session(r); ok {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	u.loginPage(w, r, http.StatusOK, "")
}

func (u *ui) login(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(loginCookie)
	field := formValue(w, r, "csrf")
	if cross := u.crossSite(r); cross || err != nil || !validLoginSecret(c.Value) || subtle.ConstantTimeCompare([]byte(field), []byte(u.mac("login", c.Value))) != 1 {
		if cross {
			u.refused("cross_site")
		} else {
			u.refused("bad_csrf")
		}
		u.message(w, nil, http.StatusForbidden, "Refused", "This sign-in did not come from paved's own form: open the sign-in page again.")
		return
	}
	name, ok := u.operatorOf(r.PostFormValue("token"))
	if !ok {
		u.refused("bad_token")
		u.log.Warn("operator sign-in refused: wrong token")
		u.loginPage(w, r, http.StatusUnauthorized, "That token is not valid.")
		return
	}
	u.setCookie(w, sessionCookie, u.newSession(name), int(u.cfg.SessionTTL/time.Second))
	u.setCookie(w, loginCookie, "", -1)
	u.log.Info("operator signed in", zap.String("operator", name))
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

// operatorOf finds whose token this is. Every token is compared, in constant
// time, so timing tells nothing about how close a guess was or whose it hit.
func (u *ui) operatorOf(token string) (string, bool) {
	// Digests of equal length: the comparison's time tells nothing of the
	// tokens' lengths either.
	got := sha256.Sum256([]byte(token))
	found := ""
	for name, want := range u.cfg.Operators {
		sum := sha256.Sum256([]byte(want))
		if subtle.ConstantTimeCompare(got[:], sum[:]) == 1 {
			found = name
		}
	}
	return found, found != "" && token != ""
}

func (u *ui) logout(w http.ResponseWriter, r *http.Request, s session) {
	u.setCookie(w, sessionCookie, "", -1)
	u.log.Info("operator signed out", zap.String("operator", s.name))
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}
