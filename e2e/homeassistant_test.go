package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	osexec "os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/relaychat/relay/internal/chatfmt"
	"github.com/relaychat/relay/internal/control"
	"github.com/relaychat/relay/internal/fakebotapi"
	"github.com/relaychat/relay/internal/render"
	"github.com/relaychat/relay/policy"
)

// haToken is the stub's long-lived access token.
const haToken = "eyJhbGciOiJIUzI1NiJ9.stub-home-assistant-token"

// haStub answers like Home Assistant's REST API, and only to the bearer
// token: /api/states, /api/states/ENTITY and the service calls the
// example makes, checking each call's JSON body.
type haStub struct {
	mu       sync.Mutex
	calls    []string // "POST /api/services/scene/turn_on {...}"
	rejected int      // requests without the right token
}

func (s *haStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+haToken {
		s.mu.Lock()
		s.rejected++
		s.mu.Unlock()
		http.Error(w, "401: Unauthorized", http.StatusUnauthorized)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	s.mu.Lock()
	s.calls = append(s.calls, r.Method+" "+r.URL.Path+" "+string(body))
	s.mu.Unlock()
	state := func(id, st string, attrs map[string]any) map[string]any {
		return map[string]any{"entity_id": id, "state": st, "attributes": attrs,
			"last_changed": "2024-05-01T10:00:00.000000+00:00", "last_updated": "2024-05-01T10:00:00.000000+00:00",
			"context": map[string]any{"id": "01HWZ3RQ9M6D5K5Y4V1B8E7T2C", "parent_id": nil, "user_id": nil}}
	}
	states := map[string]map[string]any{
		"sensor.outdoor_temperature": state("sensor.outdoor_temperature", "12.5", map[string]any{"unit_of_measurement": "°C", "device_class": "temperature", "friendly_name": "Outdoor temperature"}),
		"sensor.power_meter":         state("sensor.power_meter", "431", map[string]any{"unit_of_measurement": "W", "friendly_name": "Power"}),
		"light.kitchen":              state("light.kitchen", "on", map[string]any{"friendly_name": "Kitchen", "brightness": 255}),
		"light.hall":                 state("light.hall", "off", map[string]any{"friendly_name": "Hall"}),
		"climate.living_room":        state("climate.living_room", "heat", map[string]any{"temperature": 20, "current_temperature": 19.5, "friendly_name": "Living room"}),
	}
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	var req map[string]any
	switch {
	case r.Method == "GET" && r.URL.Path == "/api/states":
		all := []any{}
		for _, id := range []string{"sensor.outdoor_temperature", "light.kitchen", "sensor.power_meter", "light.hall", "climate.living_room"} {
			all = append(all, states[id])
		}
		reply(all)
	case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/api/states/"):
		st, ok := states[strings.TrimPrefix(r.URL.Path, "/api/states/")]
		if !ok {
			http.Error(w, `{"message": "Entity not found."}`, http.StatusNotFound)
			return
		}
		reply(st)
	case r.Method == "POST" && r.URL.Path == "/api/services/light/turn_off" && json.Unmarshal(body, &req) == nil && req["entity_id"] == "light.kitchen":
		reply([]any{state("light.kitchen", "off", map[string]any{"friendly_name": "Kitchen"})})
	case r.Method == "POST" && r.URL.Path == "/api/services/scene/turn_on" && json.Unmarshal(body, &req) == nil && req["entity_id"] == "scene.movie":
		reply([]any{state("scene.movie", "2024-05-01T10:00:01.000000+00:00", map[string]any{"friendly_name": "Movie"})})
	case r.Method == "POST" && r.URL.Path == "/api/services/climate/set_temperature" && json.Unmarshal(body, &req) == nil &&
		req["entity_id"] == "climate.living_room" && req["temperature"] == float64(20):
		reply([]any{states["climate.living_room"]})
	default:
		http.Error(w, `{"message": "bad request"}`, http.StatusBadRequest)
	}
}

// haExample is policy/examples/home-assistant.yaml pointed at the test's
// broker and stub, its token header file made where the example says,
// readable by the command's identity only.
type haExample struct {
	cfgPath string
	cfg     *policy.Config
	header  string
	cmdUID  int
}

func setUpHAExample(t *testing.T, brokerPort int, stub *httptest.Server) *haExample {
	t.Helper()
	src, err := os.ReadFile("../policy/examples/home-assistant.yaml")
	must(t, err)
	fx := fixtureDir(t)
	cmdUID := os.Getuid()
	if os.Geteuid() == 0 {
		cmdUID, _ = strconv.Atoi(strings.Split(testCommandUser, ":")[0])
	}
	// As the example's comments say: a directory of its own, 0700, and the
	// file 0400, both the command identity's.
	secrets := filepath.Join(fx, "relay-ha")
	header := filepath.Join(secrets, "ha-auth-header")
	must(t, os.Mkdir(secrets, 0o700))
	must(t, os.WriteFile(header, []byte("Authorization: Bearer "+haToken+"\n"), 0o400))
	must(t, os.Chown(secrets, cmdUID, cmdUID))
	must(t, os.Chown(header, cmdUID, cmdUID))

	stubAddr := strings.TrimPrefix(stub.URL, "http://")
	_, stubPort, _ := net.SplitHostPort(stubAddr)
	dir := t.TempDir()
	text := strings.NewReplacer(
		"/var/lib/relay-ha", secrets,
		"127.0.0.1:8123", stubAddr,
		"connect_ports: [8123]", "connect_ports: ["+stubPort+"]",
		"connect_ports: [1883]", fmt.Sprintf("connect_ports: [%d]", brokerPort),
		`-p, "1883"`, fmt.Sprintf(`-p, "%d"`, brokerPort),
		"state_dir: /var/lib/relay", "state_dir: "+filepath.Join(dir, "state")+"\n"+commandUser(),
		"dir: /var/log/relay", "dir: "+filepath.Join(dir, "audit"),
	).Replace(string(src))
	cfgPath := filepath.Join(dir, "relay.yaml")
	must(t, os.WriteFile(cfgPath, []byte(text), 0o600))
	cfg, err := policy.Load(cfgPath)
	if err != nil {
		t.Fatalf("the example, pointed at the test's broker and stub:\n%v", err)
	}
	return &haExample{cfgPath: cfgPath, cfg: cfg, header: header, cmdUID: cmdUID}
}

// exec runs relay exec, the real binary, the bot's own binding and sandbox.
func (h *haExample) exec(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := osexec.Command(relayBin, append([]string{"exec", "--config", h.cfgPath}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*osexec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// renderLimits bounds a rendering as the daemon does: by the command's
// max_output, and render's own limits.
func renderLimits(c *policy.Command) render.Limits {
	return render.Limits{Input: min(c.MaxOutput, render.MaxInput)}
}

// rendered is what the owner reads: the output through the command's
// format, as the daemon renders it.
func (h *haExample) rendered(t *testing.T, name, out string) string {
	t.Helper()
	prog, err := h.cfg.Lookup(name).Renderer()
	if err != nil || prog == nil {
		t.Fatalf("/%s: no format (%v)", name, err)
	}
	text, err := prog.Render(context.Background(), strings.NewReader(out), renderLimits(h.cfg.Lookup(name)))
	if err != nil {
		t.Fatalf("/%s: %v on %q", name, err, out)
	}
	return text
}

// TestHomeAssistantExample runs every command of the shipped example the
// way an HA user would use it, through the real sandbox (relay exec)
// against a real mosquitto and a stub of HA's REST API, and checks what
// the owner would read.
func TestHomeAssistantExample(t *testing.T) {
	need(t, "mosquitto", "mosquitto_pub", "mosquitto_sub", "curl")
	port := startMosquitto(t)
	stub := &haStub{}
	srv := httptest.NewServer(stub)
	defer srv.Close()
	h := setUpHAExample(t, port, srv)
	pub := func(topic, msg string) {
		t.Helper()
		must(t, osexec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-r", "-q", "1", "-t", topic, "-m", msg).Run())
	}

	t.Run("light, as a phone types it", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		sub := osexec.CommandContext(ctx, "mosquitto_sub", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-t", "home/+/light/set", "-v", "-C", "1", "-W", "20")
		out, err := sub.StdoutPipe()
		must(t, err)
		must(t, sub.Start())
		lines := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// A message published before the subscription is live is lost, so
		// the command runs again until the subscriber has seen it.
		deadline := time.Now().Add(20 * time.Second)
		for {
			if _, stderr, code := h.exec(t, "light", "Lounge", "On"); code != 0 {
				t.Fatalf("relay exec light Lounge On: exit %d: %s", code, stderr)
			}
			select {
			case l := <-lines:
				if l != "home/living_room/light/set on" {
					t.Fatalf("got %q on the broker, want home/living_room/light/set on", l)
				}
				_ = sub.Wait()
				return
			case <-time.After(300 * time.Millisecond):
				if time.Now().After(deadline) {
					t.Fatal("the subscriber never saw the light's message")
				}
			}
		}
	})

	for _, c := range []struct {
		name  string
		setup func()
		args  []string
		want  string
	}{
		{"climate over MQTT, retained zigbee2mqtt state", func() {
			pub("zigbee2mqtt/living_room_climate", `{"temperature":21.5,"humidity":48,"battery":97,"linkquality":120}`)
		}, []string{"climate", "lounge"}, "21.5 °C, 48 % humidity"},
		{"a plain MQTT payload as text", func() { pub("home/front_door/contact", "open") }, []string{"door"}, "the front door is open"},
		{"a sensor over REST", nil, []string{"sensor", "Outside"}, "Outdoor temperature: 12.5 °C"},
		{"every light as a table", nil, []string{"lights"}, "light    state\n──────────────\nHall     off\nKitchen  on"},
		{"a light through HA's light.turn_off", nil, []string{"lamp", "Kitchen", "aus"}, "Kitchen is off"},
		{"a scene", nil, []string{"scene", "movie"}, "activated scene.movie"},
		{"the thermostat", nil, []string{"heat", "020"}, "set to 20 °C, now 19.5 °C (heat)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				c.setup()
			}
			out, stderr, code := h.exec(t, c.args...)
			if code != 0 {
				t.Fatalf("relay exec %v: exit %d\nstdout %q\nstderr %s", c.args, code, out, stderr)
			}
			if got := h.rendered(t, c.args[0], out); got != c.want {
				t.Errorf("/%s shows\n%s\nwant\n%s\n(the raw output: %q)", c.args[0], got, c.want, out)
			}
			// relay exec shows what the chat would, after its status line.
			if want := "relay: note: the chat shows it through its format:\n  " + strings.ReplaceAll(c.want, "\n", "\n  ") + "\n"; !strings.HasSuffix(stderr, want) {
				t.Errorf("relay exec %v: stderr\n%s\nwant it to end with\n%s", c.args, stderr, want)
			}
		})
	}
	stub.mu.Lock()
	calls := strings.Join(stub.calls, "\n")
	stub.mu.Unlock()
	for _, want := range []string{
		`POST /api/services/light/turn_off {"entity_id": "light.kitchen"}`,
		`POST /api/services/scene/turn_on {"entity_id": "scene.movie"}`,
		`POST /api/services/climate/set_temperature {"entity_id": "climate.living_room", "temperature": 20}`,
	} {
		if !strings.Contains(calls, want) {
			t.Errorf("the stub got\n%s\nwant a call %s", calls, want)
		}
	}

	t.Run("the header file is readable by the command's identity only", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("commands run as this user: no other identity to compare")
		}
		// Root's 0400 file: what the comments warn against. The command,
		// running as command_user, cannot read it: curl sends no token, and
		// HA refuses the request.
		must(t, os.Chown(h.header, 0, 0))
		defer os.Chown(h.header, h.cmdUID, h.cmdUID)
		stub.mu.Lock()
		calls, rejected := len(stub.calls), stub.rejected
		stub.mu.Unlock()
		out, stderr, code := h.exec(t, "sensor", "outside")
		if code != 6 || !strings.Contains(out, "401") {
			t.Errorf("got exit %d, output %q, stderr %q; want the request refused, exit 6", code, out, stderr)
		}
		stub.mu.Lock()
		defer stub.mu.Unlock()
		if len(stub.calls) != calls || stub.rejected != rejected+1 {
			t.Errorf("the stub got %d requests with the token and %d without, want 0 and 1", len(stub.calls)-calls, stub.rejected-rejected)
		}
	})

	t.Run("a wrong token is refused by HA, and the output is not rendered", func(t *testing.T) {
		must(t, os.WriteFile(h.header, []byte("Authorization: Bearer wrong\n"), 0o400))
		out, _, code := h.exec(t, "sensor", "outside")
		if code != 6 || !strings.Contains(out, "401") {
			t.Errorf("got exit %d, output %q; want curl --fail to report 401, exit 6", code, out)
		}
		prog, _ := h.cfg.Lookup("sensor").Renderer()
		if _, err := prog.Render(context.Background(), strings.NewReader(out), renderLimits(h.cfg.Lookup("sensor"))); err == nil {
			t.Error("curl's error line rendered; want a failure, so the raw output is shown")
		}
	})
}

// haSnippet reads the commands deploy/home-assistant/configuration.yaml
// gives Home Assistant, pointed at the test's socket and binary.
func haSnippet(t *testing.T, socket string) (notifyCmd, shellCmd string) {
	t.Helper()
	data, err := os.ReadFile("../deploy/home-assistant/configuration.yaml")
	must(t, err)
	var snip struct {
		CommandLine []struct {
			Notify struct{ Name, Command string } `yaml:"notify"`
		} `yaml:"command_line"`
		ShellCommand map[string]string `yaml:"shell_command"`
	}
	must(t, yaml.Unmarshal(data, &snip))
	if len(snip.CommandLine) != 1 || snip.CommandLine[0].Notify.Name != "relay" || snip.ShellCommand["relay_front_door"] == "" {
		t.Fatalf("the snippet changed shape: %+v", snip)
	}
	r := strings.NewReplacer("/usr/local/bin/relay", relayBin, "/run/relay-notify/notify.sock", socket)
	return r.Replace(snip.CommandLine[0].Notify.Command), r.Replace(snip.ShellCommand["relay_front_door"])
}

// TestHomeAssistantNotifies runs the shipped Home Assistant snippet's
// commands as Home Assistant would, through /bin/sh, as another user in the
// notify group, against the group socket of the real relay, whose owner
// reads them in the chat marked with the group; and the same as users the
// relay must turn away, checking that each is told what is wrong. No
// command of the relay may reach the group socket's directory.
func TestHomeAssistantNotifies(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run Home Assistant's side as other users")
	}
	const (
		haUID     = 64201 // Home Assistant's user, in the group
		strangerU = 64202 // another local user
	)
	// notify.group by name, as an installer would make it: a throwaway
	// one, so that the test never touches a real homeassistant group.
	group := fmt.Sprintf("rlyha%d", os.Getpid()%100000)
	if out, err := osexec.Command("groupadd", "--system", group).CombinedOutput(); err != nil {
		t.Fatalf("groupadd: %v %s", err, out)
	}
	t.Cleanup(func() { osexec.Command("groupdel", group).Run() })
	grp, err := user.LookupGroup(group)
	must(t, err)
	gid, _ := strconv.Atoi(grp.Gid)
	fx := fixtureDir(t)
	dir := filepath.Join(fx, "notify")
	must(t, os.Mkdir(dir, 0o750))
	must(t, os.Chown(dir, 0, gid))
	must(t, os.Chmod(dir, 0o750|os.ModeSetgid))
	g := control.Group{Name: group, GID: gid, Dir: dir}
	r := startRelay(t, options{
		extra: fmt.Sprintf("notify: {group: %s, dir: %s}\n", group, dir),
		commands: fmt.Sprintf(`  peek:
    argv: [/bin/ls, %s]
    sandbox: {read: [%s]}
  forge:
    argv: [/bin/true]
    sandbox: {sockets: [%s]}
`, dir, dir, g.GroupPath()),
	})
	waitUntil(t, "the group socket", func() bool {
		c, err := net.Dial("unix", g.GroupPath())
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	// The sender the owner reads is the group's name, whatever program
	// sent it. (The relay's group socket names the group as the sender.)
	got := func(text string) fakebotapi.Message {
		t.Helper()
		m := r.expect(text)
		if !strings.HasPrefix(m.Text, chatfmt.NotifyHeader+" · "+group+"\n") {
			t.Errorf("the chat shows %q, want it marked as from %s", m.Text, group)
		}
		return m
	}
	notifyCmd, shellCmd := haSnippet(t, g.GroupPath())
	as := func(uid int, groups []uint32, stdin, script string) (string, string, int) {
		cmd := osexec.Command("/bin/sh", "-c", script)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		cmd.Dir = "/"
		cmd.Stdin = strings.NewReader(stdin)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: groups}}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*osexec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}
	// A templated message reaches relay notify on standard input: quotes,
	// dashes and shell words in it stay text.
	msg := `Outdoor temperature is -2 °C; it's "cold" --file /etc/shadow $(reboot)`
	if _, stderr, code := as(haUID, []uint32{uint32(gid)}, msg, notifyCmd); code != 0 {
		t.Fatalf("notify.relay as Home Assistant: exit %d: %s", code, stderr)
	}
	if m := got("Outdoor temperature"); !strings.HasSuffix(m.Text, "\n"+msg) {
		t.Errorf("the chat shows %q, want the message verbatim", m.Text)
	}
	if !strings.Contains(r.auditText(), fmt.Sprintf(`text from uid %d pid `, haUID)) || !strings.Contains(r.auditText(), `(\"relay\") via group `+group+`"`) {
		t.Errorf("the audit log does not name the sender's uid, program and group:\n%s", r.auditText())
	}

	if _, stderr, code := as(haUID, []uint32{uint32(gid)}, "", shellCmd); code != 0 {
		t.Fatalf("shell_command.relay_front_door: exit %d: %s", code, stderr)
	}
	got("Front door opened")
	before := strings.Count(r.auditText(), `"type":"notify"`)
	// A user outside the group, with Home Assistant's very command.
	_, stderr, code := as(strangerU, []uint32{}, "hi", notifyCmd)
	want := "relay: error: notify: the relay's socket " + g.GroupPath() + " does not accept uid 64202; add it to notify.group\n" +
		"relay: hint: usermod -aG " + group + " USER adds it to group " + group + ", which notify.group names; then restart the sending service, which reads its groups when it starts\n"
	if code != 1 || stderr != want {
		t.Errorf("a user outside the group: got exit %d, stderr\n%s\nwant exit 1, stderr\n%s", code, stderr, want)
	}

	// The report that started this: a user who can read the config but
	// is not the relay's user was told about the bot token.
	state := filepath.Join(fx, "state")
	must(t, os.Mkdir(state, 0o700))
	cfg := filepath.Join(fx, "relay.yaml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf("state_dir: %s\naudit: {dir: %s}\nauth: {owner_id: 1}\n%s\nnotify: {group: %q, dir: %s}\ncommands: {up: {argv: [/usr/bin/true]}}\n",
		state, filepath.Join(fx, "audit"), commandUser(), strconv.Itoa(gid), dir)), 0o644))
	_, stderr, code = as(strangerU, []uint32{}, "", relayBin+" notify --config "+cfg+" 'backup done'")
	want = "relay: error: notify: the relay's socket " + control.Path(state) + " does not accept uid 64202 (only the relay's user and root may use it)\n" +
		"relay: hint: add uid 64202 to group " + strconv.Itoa(gid) + " (notify.group) and send with --socket " + g.GroupPath() + "\n"
	if code != 1 || stderr != want {
		t.Errorf("the relay's own socket: got exit %d, stderr\n%s\nwant exit 1, stderr\n%s", code, stderr, want)
	}
	if strings.Contains(strings.ToLower(stderr), "token") {
		t.Errorf("the error mentions the token: %s", stderr)
	}
	if n := strings.Count(r.auditText(), `"type":"notify"`); n != before {
		t.Errorf("%d notifications arrived from users the relay must turn away", n-before)
	}

	// No command of the relay's reaches the group's directory, whatever
	// its policy declares.
	r.login()
	for _, c := range []string{"peek", "forge"} {
		r.say("/" + c)
		r.expect("sandbox unavailable on this host; command refused")
	}
	if strings.Contains(r.auditText(), `"type":"exec_start","outcome":"ok"`) {
		t.Error("a command that declares the group's directory ran")
	}
}
