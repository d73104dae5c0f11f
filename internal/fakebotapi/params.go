package fakebotapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// params are a request's parameters, from whichever encoding it used.
// A JSON body's non-string values are kept as their JSON text, which is
// how the form encodings carry them, so every handler reads one form.
type params struct {
	v     map[string]string
	files map[string]*upload
}

// upload is a file part of a multipart request.
type upload struct {
	filename    string
	contentType string
	size        int64
	sha256      string
	data        []byte // nil when over the memory cap
	tooBig      bool
}

func (p params) str(name string) string { return p.v[name] }

func (p params) has(name string) bool {
	_, ok := p.v[name]
	return ok
}

// int parses an Integer parameter; absent is 0, false.
func (p params) int(name string) (int64, bool, *apiError) {
	raw, ok := p.v[name]
	if !ok || raw == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	if err != nil {
		return 0, false, badRequest("invalid %s specified", name)
	}
	return n, true, nil
}

// bool parses a Boolean parameter as Telegram does: true and 1 are true.
func (p params) bool(name string) bool {
	switch strings.ToLower(strings.TrimSpace(p.v[name])) {
	case "true", "1":
		return true
	}
	return false
}

// readParams decodes the query string and the body: JSON, urlencoded or
// multipart, as the Bot API accepts. File parts are streamed through a
// hash and kept in memory only up to the document memory cap.
func (s *Server) readParams(r *http.Request, method string) (params, *apiError) {
	p := params{v: map[string]string{}, files: map[string]*upload{}}
	for k, vs := range r.URL.Query() {
		if len(vs) > 0 {
			p.v[k] = vs[0]
		}
	}
	ct, ctParams, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
		if err != nil {
			return p, bodyError(err)
		}
		if len(strings.TrimSpace(string(body))) > 0 {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(body, &m); err != nil {
				return p, badRequest("can't parse JSON object")
			}
			for k, raw := range m {
				switch {
				case string(raw) == "null":
				case len(raw) > 0 && raw[0] == '"':
					var str string
					if err := json.Unmarshal(raw, &str); err != nil {
						return p, badRequest("can't parse JSON object")
					}
					p.v[k] = str
				default:
					p.v[k] = string(raw)
				}
			}
		}
	case "application/x-www-form-urlencoded":
		body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
		if err != nil {
			return p, bodyError(err)
		}
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return p, badRequest("can't parse URL-encoded parameters")
		}
		for k, vs := range vals {
			if len(vs) > 0 {
				p.v[k] = vs[0]
			}
		}
	case "multipart/form-data":
		if ctParams["boundary"] == "" {
			return p, badRequest("can't parse multipart/form-data: no boundary")
		}
		if e := s.readMultipart(r, &p); e != nil {
			return p, e
		}
	}
	for _, v := range p.v {
		if !utf8.ValidString(v) {
			return p, badRequest("strings must be encoded in UTF-8")
		}
	}
	return p, nil
}

func bodyError(err error) *apiError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &apiError{code: http.StatusRequestEntityTooLarge, desc: "Request Entity Too Large"}
	}
	return badRequest("can't read the request body")
}

func (s *Server) readMultipart(r *http.Request, p *params) *apiError {
	mr, err := r.MultipartReader()
	if err != nil {
		return badRequest("can't parse multipart/form-data")
	}
	var fields int64
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return badRequest("can't parse multipart/form-data")
		}
		name := part.FormName()
		if part.FileName() != "" {
			up, e := s.receiveFile(part)
			part.Close()
			if e != nil {
				return e
			}
			p.files[name] = up
			continue
		}
		b, err := io.ReadAll(io.LimitReader(part, maxField+1))
		part.Close()
		if err != nil {
			return badRequest("can't parse multipart/form-data")
		}
		fields += int64(len(b))
		if len(b) > maxField || fields > maxBody {
			return &apiError{code: http.StatusRequestEntityTooLarge, desc: "Request Entity Too Large"}
		}
		p.v[name] = string(b)
	}
}

// receiveFile streams one file part. Beyond the size limit it keeps
// reading (to a bound) and discarding, so the client gets the 413 as an
// answer rather than a reset connection.
func (s *Server) receiveFile(part *multipart.Part) (*upload, *apiError) {
	h := sha256.New()
	up := &upload{filename: part.FileName(), contentType: part.Header.Get("Content-Type")}
	var mem []byte
	buf := make([]byte, 64<<10)
	discardLimit := 2*s.maxDoc + 64<<20
	for {
		n, err := part.Read(buf)
		if n > 0 {
			up.size += int64(n)
			if up.size > s.maxDoc {
				up.tooBig = true
				mem = nil
				if up.size > discardLimit {
					return nil, &apiError{code: http.StatusRequestEntityTooLarge, desc: "Request Entity Too Large"}
				}
			} else {
				h.Write(buf[:n])
				if up.size <= s.docMemory {
					mem = append(mem, buf[:n]...)
				} else {
					mem = nil
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, badRequest("can't read the uploaded file")
		}
	}
	if up.tooBig {
		return nil, &apiError{code: http.StatusRequestEntityTooLarge, desc: "Request Entity Too Large"}
	}
	up.sha256 = hex.EncodeToString(h.Sum(nil))
	if up.size <= s.docMemory {
		if mem == nil {
			mem = []byte{}
		}
		up.data = mem
	}
	return up, nil
}
