package fakebotapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Clock is the fake's time: message dates, poll arrival times, the
// retry_after bookkeeping, long-poll timeouts and injected delays all go
// through it, so tests can drive time by hand.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Defaults, as the cloud Bot API has them.
const (
	DefaultMaxDocumentSize = 50 << 20
	DefaultDocumentMemory  = 16 << 20
	// maxPollTimeout caps getUpdates' timeout, as Telegram does.
	maxPollTimeout = 50 * time.Second
	// maxDelay bounds Delay, so a test can never hang on it for long.
	maxDelay = 5 * time.Minute
	// maxBody caps a request body that is not a document upload.
	maxBody = 10 << 20
	// maxField caps one multipart field that is not a file.
	maxField = 1 << 20
	// maxQueue bounds the updates the fake holds unconfirmed.
	maxQueue = 100000
)

// Option configures a Server.
type Option func(*Server)

// WithClock makes the fake keep time by c instead of the wall clock.
func WithClock(c Clock) Option { return func(s *Server) { s.clock = c } }

// WithMaxDocumentSize sets the largest upload sendDocument accepts; larger
// ones get 413 Request Entity Too Large. The default is the cloud's 50 MB;
// a local Bot API server allows 2000 MB.
func WithMaxDocumentSize(n int64) Option { return func(s *Server) { s.maxDoc = n } }

// WithDocumentMemory sets the largest document whose bytes the fake keeps;
// larger ones keep only size and SHA-256.
func WithDocumentMemory(n int64) Option { return func(s *Server) { s.docMemory = n } }

// WithBotUser sets what getMe answers. The ID defaults to the number
// before the token's colon, the username to "relay_test_bot".
func WithBotUser(u User) Option { return func(s *Server) { s.bot = u } }

// WithStrictChats makes sending to a chat the fake has not seen in an
// update (or registered with AddChat) fail with "chat not found", as
// Telegram does for users who never started the bot.
func WithStrictChats() Option { return func(s *Server) { s.strictChats = true } }

// WithLenientHTML makes parse_mode HTML exactly Telegram's: a bare "&" is
// kept literally instead of refused (see ParseHTML).
func WithLenientHTML() Option { return func(s *Server) { s.lenientHTML = true } }

// WithFirstUpdateID sets the first update_id; Telegram's do not start at 1.
func WithFirstUpdateID(id int64) Option { return func(s *Server) { s.nextUpdate = id } }

// Feature is a part of the Bot API that a server may lack: an older
// Telegram, or a local Bot API build. Without makes the fake answer as
// such a server does.
type Feature string

// Features that Without can take away.
const (
	// FeatureDrafts is sendMessageDraft (Bot API 9.5 for every bot).
	// Without it the method is unknown: 404 Not Found.
	FeatureDrafts Feature = "drafts"
	// FeatureStopButton is sendMessageDraft's can_stop and the
	// stopped_message_generation update (Bot API 10.3). Without it
	// can_stop is ignored, so no draft can be stopped.
	FeatureStopButton Feature = "stop"
	// FeatureButtonStyle is InlineKeyboardButton.style (Bot API 9.4).
	// Without it the field is ignored and buttons show plain.
	FeatureButtonStyle Feature = "style"
	// FeatureDisabledButton is InlineKeyboardButton.disabled (Bot API
	// 10.3). Without it a disabled button is a button of no known kind,
	// refused with "Text buttons are unallowed in the inline keyboard".
	FeatureDisabledButton Feature = "disabled"
)

// Features lists every Feature, for a tool's usage text.
var Features = []Feature{FeatureDrafts, FeatureStopButton, FeatureButtonStyle, FeatureDisabledButton}

// Without makes the fake lack the given features, as an older server does.
func Without(fs ...Feature) Option {
	return func(s *Server) {
		for _, f := range fs {
			s.lacks[f] = true
		}
	}
}

func (s *Server) has(f Feature) bool { return !s.lacks[f] }

// Server is a fake Bot API for one bot token. All of its methods are safe
// for concurrent use.
type Server struct {
	token       string
	clock       Clock
	maxDoc      int64
	docMemory   int64
	strictChats bool
	lenientHTML bool
	bot         User
	methods     map[string]handler
	// lacks are the features the fake answers as if it predated.
	lacks map[Feature]bool

	// done is closed by Close; every wait in a handler selects on it.
	done      chan struct{}
	closeOnce sync.Once
	served    chan struct{} // closed when the Serve loop returns
	httpSrv   *http.Server
	url       string

	mu sync.Mutex
	// closed is set by Close; no request starts after it.
	closed bool
	// active counts requests being served; Close waits for it to be 0.
	active int
	// changed is closed and replaced on every state change; waiters take
	// the current one under mu and block on it outside.
	changed chan struct{}

	nextUpdate int64
	queue      []queued // unconfirmed updates, in update_id order
	allowed    map[string]bool
	poll       *poller // the getUpdates waiting now, if any
	pollTimes  []time.Time
	delivered  map[int64]time.Time
	confirmed  map[int64]time.Time
	conflicts  int

	chats     map[int64]*chatState
	sent      []*message // bot's text messages in order
	docs      []*Document
	callbacks map[string]bool // query ID -> answered
	nextQuery int64
	answers   []CallbackAnswer
	commands  map[string][]Command // by scope JSON + "|" + language
	webhook   WebhookCall          // current setting; URL "" when none
	hooks     []WebhookCall
	drafts    []*Draft // in the order they started
	events    []Event  // the last maxEvents changes
	eventSeq  uint64

	calls        map[string]int // by lower-case method
	unauthorized int
	faults       map[string]*fault
	tooEarly     int
}

// New returns a fake Bot API server for token. Call Start to listen, or
// use Handler with httptest.
func New(token string, opts ...Option) *Server {
	s := &Server{
		token:      token,
		clock:      realClock{},
		maxDoc:     DefaultMaxDocumentSize,
		docMemory:  DefaultDocumentMemory,
		done:       make(chan struct{}),
		changed:    make(chan struct{}),
		nextUpdate: 700000001,
		delivered:  map[int64]time.Time{},
		confirmed:  map[int64]time.Time{},
		chats:      map[int64]*chatState{},
		callbacks:  map[string]bool{},
		commands:   map[string][]Command{},
		calls:      map[string]int{},
		faults:     map[string]*fault{},
		lacks:      map[Feature]bool{},
	}
	id, _, _ := strings.Cut(token, ":")
	botID, _ := strconv.ParseInt(id, 10, 64)
	s.bot = User{ID: botID, IsBot: true, FirstName: "Relay Test", Username: "relay_test_bot"}
	for _, o := range opts {
		o(s)
	}
	s.bot.IsBot = true
	s.methods = s.methodTable()
	return s
}

// Start listens on 127.0.0.1 on a free port and serves until Close.
func (s *Server) Start() error { return s.StartOn("127.0.0.1:0") }

// StartOn listens on addr, which must be a loopback address ("localhost"
// is taken as 127.0.0.1), and serves until Close. A fixed port keeps a
// relay config's api_url valid across restarts of the fake.
func (s *Server) StartOn(addr string) error {
	addr, err := loopbackAddr(addr)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("fakebotapi: listen on %s: %w", addr, err)
	}
	s.mu.Lock()
	if s.httpSrv != nil {
		s.mu.Unlock()
		ln.Close()
		return errors.New("fakebotapi: Start called twice")
	}
	s.httpSrv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	s.url = "http://" + ln.Addr().String()
	srv := s.httpSrv
	s.served = make(chan struct{})
	served := s.served
	s.mu.Unlock()
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	return nil
}

// loopbackAddr checks that addr is host:port with a loopback IP host.
func loopbackAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("fakebotapi: listen address %q is not host:port (want e.g. 127.0.0.1:8081)", addr)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("fakebotapi: listen address %q is not a loopback address; the fake listens on 127.0.0.1 or ::1 only", addr)
	}
	return net.JoinHostPort(ip.String(), port), nil
}

// URL is the base URL to give the client (telegram.api_url), without a
// trailing slash. It is empty before Start.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Handler serves the Bot API, for use with httptest.Server.
func (s *Server) Handler() http.Handler { return s }

// Close releases every waiting request, stops the listener started by
// Start, closes its connections and waits for all handlers to return.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.done)
		srv, served := s.httpSrv, s.served
		s.mu.Unlock()
		if srv != nil {
			_ = srv.Close()
			<-served
		}
	})
	for {
		s.mu.Lock()
		if s.active == 0 {
			s.mu.Unlock()
			return
		}
		ch := s.changed
		s.mu.Unlock()
		<-ch
	}
}

// apiError is a Bot API failure envelope.
type apiError struct {
	code       int
	desc       string
	retryAfter int
}

func badRequest(format string, args ...any) *apiError {
	return &apiError{code: http.StatusBadRequest, desc: "Bad Request: " + fmt.Sprintf(format, args...)}
}

type handler func(r *http.Request, p params) (any, *apiError)

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeError(w, &apiError{code: http.StatusServiceUnavailable, desc: "Service Unavailable: server is closing"})
		return
	}
	s.active++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.active--
		s.notifyLocked()
		s.mu.Unlock()
	}()

	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	token, method, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || method == "" || strings.Contains(method, "/") {
		writeError(w, &apiError{code: http.StatusNotFound, desc: "Not Found"})
		return
	}
	if token != s.token {
		s.mu.Lock()
		s.unauthorized++
		s.mu.Unlock()
		writeError(w, &apiError{code: http.StatusUnauthorized, desc: "Unauthorized"})
		return
	}
	// Bot API method names are case-insensitive.
	key := strings.ToLower(method)
	h, known := s.methods[key]
	if key == "sendmessagedraft" && !s.has(FeatureDrafts) {
		known = false // a server that predates a method does not know it
	}
	s.mu.Lock()
	s.calls[key]++
	s.notifyLocked()
	s.mu.Unlock()
	if !known {
		writeError(w, &apiError{code: http.StatusNotFound, desc: "Not Found"})
		return
	}
	if s.injectFault(w, r, key) {
		return
	}
	p, perr := s.readParams(r, key)
	if perr != nil {
		writeError(w, perr)
		return
	}
	result, aerr := h(r, p)
	if aerr != nil {
		if aerr.code == 0 {
			return // the handler gave up on a request whose client left
		}
		writeError(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "result": result})
}

func writeError(w http.ResponseWriter, e *apiError) {
	body := map[string]any{"ok": false, "error_code": e.code, "description": e.desc}
	if e.retryAfter > 0 {
		body["parameters"] = map[string]any{"retry_after": e.retryAfter}
	}
	writeJSON(w, e.code, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"ok":false,"error_code":500,"description":"Internal Server Error: fake could not encode its answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// notifyLocked wakes every waiter. s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) methodTable() map[string]handler {
	m := map[string]handler{
		"getMe":                  s.getMe,
		"getUpdates":             s.getUpdates,
		"setWebhook":             s.setWebhook,
		"deleteWebhook":          s.deleteWebhook,
		"getWebhookInfo":         s.getWebhookInfo,
		"sendMessage":            s.sendMessage,
		"editMessageText":        s.editMessageText,
		"editMessageReplyMarkup": s.editMessageReplyMarkup,
		"deleteMessage":          s.deleteMessage,
		"sendDocument":           s.sendDocument,
		"sendMessageDraft":       s.sendMessageDraft,
		"answerCallbackQuery":    s.answerCallbackQuery,
		"setMyCommands":          s.setMyCommands,
		"getMyCommands":          s.getMyCommands,
		"deleteMyCommands":       s.deleteMyCommands,
	}
	out := make(map[string]handler, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}
