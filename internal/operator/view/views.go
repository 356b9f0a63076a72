// Package view writes the operator page's HTML: the layout and each page,
// from data the handlers have already read. It is the only code that holds
// the escaping markup builder (html.go), so nothing that handles a request
// can write markup: it can only hand a view its data.
package view

import (
	"bytes"
	"encoding/json"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/store"
)

// Page is what every page gets: the layout's fields and the page's own.
type Page struct {
	Title    string
	Nav      string // the highlighted menu entry
	Operator string // empty when nobody is signed in
	CSRF     string
	Data     any // Login, Message, Runs, Run or Queue
}

// Render builds p's page.
func Render(p Page) *bytes.Buffer {
	var m markup
	view(&m, p)
	return &m.b
}

// The pages' data.
type (
	Login   struct{ Problem string }
	Message struct{ Title, Text string }
	Runs    struct {
		Filters  Filters
		States   []run.State
		Runs     []*run.Run
		Limit    int
		Filtered bool
	}
	Run struct {
		Run                         *run.Run
		Events                      []run.Event
		Lines                       []store.LogLine
		After                       int64
		CanCancel, CanDecide, Ended bool
	}
	Queue struct{ Stacks []Stack }
)

// Filters are the runs list's query parameters.
type Filters struct{ State, Action, Tenant, Environment, User string }

// Stack is a stack's line of unfinished runs.
type Stack struct {
	Key    string
	Places []Place
}

// Place is a run in its stack's line.
type Place struct {
	Run *run.Run
	// Ahead counts the runs before it; -1 for a run not in line yet
	// (received, or awaiting approval).
	Ahead int
}

// view writes p's page into m.
func view(m *markup, p Page) {
	m.raw("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n" +
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>").text(p.Title).raw(" · paved operator</title>\n" +
		"<link rel=\"icon\" href=\"/ui/assets/favicon.svg\" type=\"image/svg+xml\">\n" +
		"<link rel=\"stylesheet\" href=\"/ui/assets/operator.css\">\n" +
		"<script src=\"/ui/assets/operator.js\" defer></script>\n</head>\n<body>\n<header class=\"top\">\n" +
		"  <a class=\"brand\" href=\"/ui/\">paved <span>operator</span></a>")
	if p.Operator != "" {
		m.raw("\n  <nav>\n    <a href=\"/ui/\" class=\"").when(p.Nav == "runs", "on").raw("\">Runs</a>\n"+
			"    <a href=\"/ui/queue\" class=\"").when(p.Nav == "queue", "on").raw("\">Queue</a>\n  </nav>\n" +
			"  <form class=\"who\" method=\"post\" action=\"/ui/logout\">\n")
		csrfField(m, p.CSRF)
		m.raw("    <span class=\"name\">").text(p.Operator).raw("</span>\n" +
			"    <button type=\"submit\" class=\"link\">Sign out</button>\n  </form>")
	}
	m.raw("\n</header>\n<main>\n")
	switch d := p.Data.(type) {
	case Login:
		viewLogin(m, p, d)
	case Message:
		viewMessage(m, d)
	case Runs:
		viewRuns(m, d)
	case Run:
		viewRun(m, p, d)
	case Queue:
		viewQueue(m, d)
	}
	m.raw("</main>\n</body>\n</html>\n")
}

func csrfField(m *markup, token string) {
	m.raw("    <input type=\"hidden\" name=\"csrf\"").attr("value", token).raw(">\n")
}

func badge(m *markup, s run.State) {
	m.raw("<span").attr("class", "badge s-"+string(s)).raw(">").text(stateLabel(s)).raw("</span>")
}

func stateLabel(s run.State) string { return strings.ReplaceAll(string(s), "_", " ") }

// runHref is a run page's path.
func runHref(id string) string { return "/ui/runs/" + url.PathEscape(id) }

func pipelineLink(m *markup, r *run.Run) {
	switch {
	case r.PipelineID == 0:
		m.raw("<span class=\"muted\">—</span>")
	case webURL(r.PipelineURL) != "":
		m.raw("<a").attr("href", r.PipelineURL).raw(" target=\"_blank\" rel=\"noopener noreferrer\">#").int(r.PipelineID).raw("</a>")
	default:
		m.raw("#").int(r.PipelineID)
	}
}

func viewLogin(m *markup, p Page, d Login) {
	m.raw("<section class=\"card login\">\n  <h1>Sign in</h1>\n" +
		"  <p class=\"muted\">Paste your operator token. It names you: what you do here is recorded as <code>operator:&lt;your name&gt;</code>.</p>\n")
	if d.Problem != "" {
		m.raw("  <p class=\"problem\" role=\"alert\">").text(d.Problem).raw("</p>\n")
	}
	m.raw("  <form method=\"post\" action=\"/ui/login\">\n")
	csrfField(m, p.CSRF)
	m.raw("    <label for=\"token\">Operator token</label>\n" +
		"    <input id=\"token\" type=\"password\" name=\"token\" autocomplete=\"current-password\" required autofocus>\n" +
		"    <button type=\"submit\" class=\"primary\">Sign in</button>\n  </form>\n</section>\n")
}

func viewMessage(m *markup, d Message) {
	m.raw("<section class=\"card notice\">\n  <h1>").text(d.Title).raw("</h1>\n  <p>").text(d.Text).
		raw("</p>\n  <p><a href=\"/ui/\">Back to the runs</a></p>\n</section>\n")
}

func viewRuns(m *markup, d Runs) {
	m.raw("<div class=\"titlebar\">\n  <h1>Runs</h1>\n  <span class=\"muted\">newest first").when(d.Filtered, ", filtered").
		raw("; at most ").int(int64(d.Limit)).raw("</span>\n</div>\n<form class=\"filters\" method=\"get\" action=\"/ui/\">\n" +
		"  <label>State\n    <select name=\"state\">\n      <option value=\"\">any</option>\n")
	for _, s := range d.States {
		m.raw("      <option").attr("value", string(s)).when(string(s) == d.Filters.State, " selected").raw(">").text(stateLabel(s)).raw("</option>\n")
	}
	m.raw("    </select>\n  </label>\n")
	for _, f := range []struct{ label, name, value, placeholder, class string }{
		{"Action", "action", d.Filters.Action, "add-s3-bucket", ""}, {"Tenant", "tenant", d.Filters.Tenant, "acme", ""},
		{"Environment", "environment", d.Filters.Environment, "dev", ""}, {"User", "user", d.Filters.User, "dana@example.com", "wide"},
	} {
		m.raw("  <label>").text(f.label).raw(" <input").attr("name", f.name).attr("value", f.value).attr("placeholder", f.placeholder)
		if f.class != "" {
			m.attr("class", f.class)
		}
		m.raw("></label>\n")
	}
	m.raw("  <button type=\"submit\" class=\"primary\">Filter</button>\n").when(d.Filtered, "  <a class=\"clear\" href=\"/ui/\">Clear</a>\n").
		raw("</form>\n<table class=\"runs\" id=\"runs\">\n  <thead><tr><th>Run</th><th>Action</th><th>Tenant</th><th>Env</th><th>Service</th>" +
			"<th>User</th><th>State</th><th>Created (UTC)</th><th>Pipeline</th></tr></thead>\n  <tbody>\n")
	for _, r := range d.Runs {
		m.raw("    <tr").attr("data-run", r.ID).raw(">\n      <td class=\"mono\"><a").attr("href", runHref(r.ID)).raw(">").text(r.ID).raw("</a></td>\n")
		for _, cell := range []string{r.Request.Action, r.Stack.Tenant, r.Stack.Environment, r.Stack.Service, r.Request.User.Email} {
			m.raw("      <td>").text(cell).raw("</td>\n")
		}
		m.raw("      <td>")
		badge(m, r.State)
		m.raw("</td>\n      <td class=\"mono\">").text(timestamp(r.CreatedAt)).raw("</td>\n      <td>")
		pipelineLink(m, r)
		m.raw("</td>\n    </tr>\n")
	}
	if len(d.Runs) == 0 {
		m.raw("    <tr><td colspan=\"9\" class=\"empty\">No runs").when(d.Filtered, " match these filters").raw(".</td></tr>\n")
	}
	m.raw("  </tbody>\n</table>\n")
}

// postButton is a one-button form for an action on run id.
func postButton(m *markup, csrf, id, verb, class, buttonID, label string) {
	m.raw("    <form method=\"post\"").attr("action", runHref(id)+"/"+verb).raw(">\n")
	csrfField(m, csrf)
	m.raw("      <button type=\"submit\"").attr("class", class).attr("id", buttonID).raw(">").text(label).raw("</button>\n    </form>\n")
}

func viewRun(m *markup, p Page, d Run) {
	r := d.Run
	m.raw("<p class=\"crumbs\"><a href=\"/ui/\">Runs</a> / <span class=\"mono\">").text(r.ID).raw("</span></p>\n" +
		"<div class=\"titlebar\">\n  <h1>").text(r.Request.Action).raw(" <span class=\"muted\">on ").text(r.Stack.Key()).raw("</span></h1>\n  <span id=\"state\">")
	badge(m, r.State)
	m.raw("</span>\n  <div class=\"buttons\">\n")
	if d.CanDecide {
		postButton(m, p.CSRF, r.ID, "approve", "primary", "approve", "Approve")
		m.raw("    <form method=\"post\" class=\"deny\"").attr("action", runHref(r.ID)+"/deny").raw(">\n")
		csrfField(m, p.CSRF)
		m.raw("      <input name=\"reason\" placeholder=\"reason (optional)\" maxlength=\"500\">\n" +
			"      <button type=\"submit\" id=\"deny\">Deny</button>\n    </form>\n")
	}
	if d.CanCancel {
		postButton(m, p.CSRF, r.ID, "cancel", "danger", "cancel", "Cancel run")
	}
	m.raw("  </div>\n</div>\n")
	if len(r.Reasons) > 0 {
		m.raw("<ul class=\"reasons\">")
		for _, reason := range r.Reasons {
			m.raw("<li>").text(reason).raw("</li>")
		}
		m.raw("</ul>\n")
	}
	m.raw("<div class=\"grid\">\n  <section class=\"card\">\n    <h2>Run</h2>\n    <dl class=\"facts\">\n")
	fact := func(label, class string) {
		m.raw("      <dt>").text(label).raw("</dt><dd")
		if class != "" {
			m.attr("class", class)
		}
		m.raw(">")
	}
	fact("Id", "mono")
	m.text(r.ID).raw("</dd>\n")
	fact("Stack", "mono")
	m.text(r.Stack.Key()).raw("</dd>\n")
	fact("Tenant · env · service", "")
	m.text(r.Stack.Tenant + " · " + r.Stack.Environment + " · " + r.Stack.Service).raw("</dd>\n")
	fact("Operation", "")
	m.text(string(r.Operation)).raw("</dd>\n")
	fact("User", "")
	m.text(r.Request.User.Email)
	if len(r.Request.User.Teams) > 0 {
		m.raw(" <span class=\"muted\">(").text(strings.Join(r.Request.User.Teams, ", ")).raw(")</span>")
	}
	m.raw("</dd>\n")
	fact("Portal", "")
	m.text(r.Request.Portal).raw(" <span class=\"mono muted\">").text(r.Request.PortalRunID).raw("</span>")
	if r.Request.Caller != "" {
		m.raw(" <span class=\"muted\">via ").text(r.Request.Caller).raw("</span>")
	}
	m.raw("</dd>\n")
	if r.State == run.AwaitingApproval {
		m.raw("      <dt>Approvers</dt><dd id=\"approvers\">")
		if len(r.Approvers) == 0 {
			m.raw("<span class=\"muted\">none named</span>")
		}
		m.text(strings.Join(r.Approvers, ", "))
		if !r.ApprovalExpiresAt.IsZero() {
			m.raw(" <span class=\"muted\">until ").text(timestamp(r.ApprovalExpiresAt)).raw("</span>")
		}
		m.raw("</dd>\n")
	}
	m.raw("      <dt>Pipeline</dt><dd id=\"pipeline\">")
	pipelineLink(m, r)
	if r.PipelineStatus != "" {
		m.raw(" <span class=\"muted\">").text(r.PipelineStatus).raw("</span>")
	}
	m.raw(" <span class=\"muted\">").text(r.Project + "@" + r.Ref).raw("</span></dd>\n")
	fact("Created", "mono")
	m.text(timestamp(r.CreatedAt)).raw("</dd>\n")
	fact("Updated", "mono")
	m.text(timestamp(r.UpdatedAt)).raw("</dd>\n    </dl>\n  </section>\n" +
		"  <section class=\"card\">\n    <h2>Inputs</h2>\n    <table class=\"kv\" id=\"inputs\">\n      ")
	inputs := inputsOf(r)
	for _, in := range inputs {
		m.raw("<tr><th>").text(in.Key).raw("</th><td class=\"mono\">").text(in.Value).raw("</td></tr>")
	}
	if len(inputs) == 0 {
		m.raw("<tr><td class=\"empty\">No inputs.</td></tr>")
	}
	m.raw("\n    </table>\n  </section>\n</div>\n<section class=\"card\">\n  <h2>Timeline</h2>\n  <ol class=\"timeline\" id=\"timeline\">\n    ")
	for _, e := range d.Events {
		m.raw("<li><time class=\"mono\">").text(timestamp(e.At)).raw("</time>")
		badge(m, e.State)
		m.raw("<span>").text(e.Message).raw("</span></li>")
	}
	if len(d.Events) == 0 {
		m.raw("<li class=\"empty\">No events.</li>")
	}
	m.raw("\n  </ol>\n</section>\n<section class=\"card\">\n  <h2>Log <span class=\"live\" id=\"live\"></span></h2>\n"+
		"  <div class=\"log\" id=\"log\"").attr("data-stream", runHref(r.ID)+"/log/stream?after="+strconv.FormatInt(d.After, 10)).raw(" data-live=\"off\">\n    ")
	for _, l := range d.Lines {
		m.raw("<div class=\"line\"><span class=\"seq\">").int(l.Seq).raw("</span><time>").text(timestamp(l.At)).
			raw("</time><span class=\"text\">").text(l.Line).raw("</span></div>")
	}
	if len(d.Lines) == 0 {
		m.raw("<p class=\"empty\" id=\"nolog\">No log lines yet.</p>")
	}
	m.raw("\n  </div>\n</section>\n")
}

func viewQueue(m *markup, d Queue) {
	m.raw("<div class=\"titlebar\">\n  <h1>Queue</h1>\n" +
		"  <span class=\"muted\">unfinished runs by stack, in the order they run; one run per stack holds it at a time</span>\n</div>\n")
	for _, st := range d.Stacks {
		m.raw("<section class=\"card stack\"").attr("data-stack", st.Key).raw(">\n  <h2 class=\"mono\">").text(st.Key).raw("</h2>\n" +
			"  <table class=\"runs\">\n    <thead><tr><th>Place</th><th>Run</th><th>State</th><th>Action</th><th>User</th><th>Created (UTC)</th></tr></thead>\n    <tbody>\n")
		for _, pl := range st.Places {
			m.raw("      <tr").attr("data-run", pl.Run.ID).raw(">\n        <td>")
			switch {
			case pl.Ahead < 0:
				m.raw("<span class=\"muted\">not in line</span>")
			case pl.Ahead == 0 && pl.Run.State == run.Queued:
				m.raw("next")
			case pl.Ahead == 0:
				m.raw("holds the stack")
			default:
				m.int(int64(pl.Ahead)).raw(" ahead")
			}
			m.raw("</td>\n        <td class=\"mono\"><a").attr("href", runHref(pl.Run.ID)).raw(">").text(pl.Run.ID).raw("</a></td>\n        <td>")
			badge(m, pl.Run.State)
			m.raw("</td>\n        <td>").text(pl.Run.Request.Action).raw("</td>\n        <td>").text(pl.Run.Request.User.Email).
				raw("</td>\n        <td class=\"mono\">").text(timestamp(pl.Run.CreatedAt)).raw("</td>\n      </tr>\n")
		}
		m.raw("    </tbody>\n  </table>\n</section>\n")
	}
	if len(d.Stacks) == 0 {
		m.raw("<section class=\"card\"><p class=\"empty\">No unfinished runs: every stack is free.</p></section>\n")
	}
}

// input is one of a run's inputs, its value as text.
type input struct{ Key, Value string }

func inputsOf(r *run.Run) []input {
	out := make([]input, 0, len(r.Request.Inputs))
	for k, v := range r.Request.Inputs {
		text, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(v)
			text = string(b)
		}
		out = append(out, input{k, text})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func timestamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// webURL is u when it is an http(s) URL, else empty: only those become links.
func webURL(raw string) string {
	p, err := url.Parse(raw)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return ""
	}
	return raw
}
