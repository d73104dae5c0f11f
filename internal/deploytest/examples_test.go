package deploytest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relaychat/relay/policy"
)

const examplesDir = "../../policy/examples"

// setUpDir is where the examples keep what the owner creates while setting
// up (home-assistant.yaml's token header file). loadExample makes it in a
// temp dir, so the examples load on a host without it; setUp is that dir.
const setUpDir = "/var/lib/relay-ha"

var setUp string

func loadExample(t *testing.T, name string) *policy.Config {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(examplesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if setUp == "" {
		d, err := os.MkdirTemp("", "relay-ha-")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "ha-auth-header"), []byte("Authorization: Bearer example\n"), 0o400); err != nil {
			t.Fatal(err)
		}
		setUp = d
	}
	cfg, err := policy.Parse(filepath.Join(examplesDir, name), []byte(strings.ReplaceAll(string(data), setUpDir, setUp)))
	if err != nil {
		t.Fatalf("load %s:\n%v", name, err)
	}
	return cfg
}

// TestExamplesBindAsDocumented binds chat arguments through each example
// and compares the argv with what the example's comments promise. YAML flow
// sequences split on commas, so an argument like "--output=a,b" that is not
// quoted silently becomes several; this catches that class of mistake too.
func TestExamplesBindAsDocumented(t *testing.T) {
	loadExample(t, "home-assistant.yaml") // makes setUp
	hdr := []string{"/usr/bin/curl", "--disable", "--silent", "--show-error", "--fail", "--max-time", "10", "--proto", "=http",
		"-H", "@" + setUp + "/ha-auth-header"}
	json := []string{"-H", "Content-Type: application/json", "--data"}
	cat := func(parts ...[]string) []string { return slices.Concat(parts...) }
	for _, c := range []struct {
		file, cmd string
		args      []string
		want      []string
	}{
		{"home-assistant.yaml", "light", []string{"kitchen", "on"},
			[]string{"/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p", "1883", "-q", "1", "-t", "home/kitchen/light/set", "-m", "on"}},
		{"home-assistant.yaml", "light", []string{"living_room", "off"},
			[]string{"/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p", "1883", "-q", "1", "-t", "home/living_room/light/set", "-m", "off"}},
		{"home-assistant.yaml", "light", []string{"Lounge", "On"}, // as a phone types it
			[]string{"/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p", "1883", "-q", "1", "-t", "home/living_room/light/set", "-m", "on"}},
		{"home-assistant.yaml", "climate", []string{"bedroom"},
			[]string{"/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", "1883", "-C", "1", "-W", "5", "-t", "zigbee2mqtt/bedroom_climate"}},
		{"home-assistant.yaml", "door", nil,
			[]string{"/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", "1883", "-C", "1", "-W", "5", "-t", "home/front_door/contact"}},
		{"home-assistant.yaml", "sensor", []string{"Outside"},
			cat(hdr, []string{"http://127.0.0.1:8123/api/states/sensor.outdoor_temperature"})},
		{"home-assistant.yaml", "lights", nil,
			cat(hdr, []string{"http://127.0.0.1:8123/api/states"})},
		{"home-assistant.yaml", "lamp", []string{"Hall", "An"},
			cat(hdr, json, []string{`{"entity_id": "light.hall"}`, "http://127.0.0.1:8123/api/services/light/turn_on"})},
		{"home-assistant.yaml", "scene", []string{"movie"},
			cat(hdr, json, []string{`{"entity_id": "scene.movie"}`, "http://127.0.0.1:8123/api/services/scene/turn_on"})},
		{"home-assistant.yaml", "heat", []string{"020"},
			cat(hdr, json, []string{`{"entity_id": "climate.living_room", "temperature": 20}`, "http://127.0.0.1:8123/api/services/climate/set_temperature"})},
		{"home-assistant.yaml", "sensor", []string{"power_meter"},
			cat(hdr, []string{"http://127.0.0.1:8123/api/states/sensor.power_meter"})},
		{"homelab.yaml", "logs", []string{"nginx"},
			[]string{"/usr/bin/journalctl", "--no-pager", "--output=short-iso", "-u", "nginx.service", "-n", "50"}},
		{"homelab.yaml", "restart_nginx", nil,
			[]string{"/usr/bin/systemctl", "--no-ask-password", "start", "relay-action-restart-nginx.service"}},
		{"homelab.yaml", "reboot", nil,
			[]string{"/usr/bin/systemctl", "--no-ask-password", "start", "relay-action-reboot.service"}},
		{"audit-review.yaml", "audit_space", nil,
			[]string{"/usr/bin/df", "-h", "--output=target,size,used,avail,pcent", "/var/log"}},
		{"audit-review.yaml", "relay_service", nil,
			[]string{"/usr/bin/systemctl", "show", "relay.service", "--no-pager",
				"--property=ActiveState,SubState,NRestarts,ActiveEnterTimestamp,MemoryCurrent,TasksCurrent"}},
	} {
		t.Run(c.file+"/"+c.cmd+"/"+strings.Join(c.args, "_"), func(t *testing.T) {
			cfg := loadExample(t, c.file)
			cmd := cfg.Lookup(c.cmd)
			if cmd == nil {
				t.Fatalf("%s has no command %q", c.file, c.cmd)
			}
			inv, err := cmd.Bind(c.args)
			if err != nil {
				t.Fatalf("bind %v: %v", c.args, err)
			}
			if !slices.Equal(inv.Argv, c.want) {
				t.Errorf("got argv\n  %q\nwant\n  %q", inv.Argv, c.want)
			}
		})
	}
}

// TestExamplesRefuse: what the comments say is refused, is.
func TestExamplesRefuse(t *testing.T) {
	for _, c := range []struct {
		file, cmd string
		args      []string
	}{
		{"home-assistant.yaml", "light", []string{"garage", "on"}},
		{"home-assistant.yaml", "light", []string{"#", "on"}},
		{"home-assistant.yaml", "light", []string{"kitchen/../x", "on"}},
		{"home-assistant.yaml", "light", []string{"kitchen", "onn"}},
		{"home-assistant.yaml", "light", []string{"kitchen", "ON\u202e"}},
		{"home-assistant.yaml", "sensor", []string{"sensor.outdoor_temperature"}},
		{"home-assistant.yaml", "light", []string{"kitchen", "on", "extra"}},
		{"home-assistant.yaml", "heat", []string{"25"}},
		{"home-assistant.yaml", "heat", []string{"20, \"x\": 1"}},
		{"home-assistant.yaml", "scene", []string{`movie"}`}},
		{"homelab.yaml", "logs", []string{"sshd"}},
		{"homelab.yaml", "logs", []string{"nginx", "501"}},
		{"homelab.yaml", "logs", []string{"nginx", "-1"}},
		{"homelab.yaml", "reboot", []string{"now"}},
	} {
		t.Run(c.file+"/"+c.cmd+"/"+strings.Join(c.args, "_"), func(t *testing.T) {
			cmd := loadExample(t, c.file).Lookup(c.cmd)
			if cmd == nil {
				t.Fatalf("%s has no command %q", c.file, c.cmd)
			}
			if inv, err := cmd.Bind(c.args); err == nil {
				t.Errorf("got argv %q, want a refusal", inv.Argv)
			}
		})
	}
}

// TestExamplesPolicyChoices pins the security choices the examples'
// comments explain.
func TestExamplesPolicyChoices(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if len(files) < 3 {
		t.Fatalf("got %d examples, want homelab, home-assistant and audit-review", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			cfg := loadExample(t, name)
			if cfg.StateDir != "/var/lib/relay" || cfg.Audit.Dir != "/var/log/relay" {
				t.Errorf("got state %s, audit %s; want /var/lib/relay and /var/log/relay, the unit's directories", cfg.StateDir, cfg.Audit.Dir)
			}
			for _, c := range cfg.Commands {
				if c.Sandbox.Disabled {
					t.Errorf("/%s: sandbox: none; the examples keep every command sandboxed", c.Name)
				}
				if c.Sandbox.Network {
					t.Errorf("/%s: network: true; name the ports with connect_ports", c.Name)
				}
				for _, a := range c.Argv {
					if strings.Contains(strings.ToLower(a), "bearer") || a == "-P" || a == "--pw" {
						t.Errorf("/%s: argv element %q looks like a credential; secrets never go in argv", c.Name, a)
					}
				}
				if strings.HasPrefix(name, "homelab") && strings.Contains(strings.Join(c.Argv, " "), "relay-action-") && !c.Confirm {
					t.Errorf("/%s starts a privileged action without confirm: true", c.Name)
				}
			}
		})
	}
	if reboot := loadExample(t, "homelab.yaml").Lookup("reboot"); reboot == nil || !reboot.Reauth || !reboot.Confirm {
		t.Error("homelab /reboot must need both confirm and reauth")
	}
	for _, c := range loadExample(t, "home-assistant.yaml").Commands {
		if len(c.Sandbox.ConnectPorts) != 1 {
			t.Errorf("/%s: got connect_ports %v, want exactly the one service port", c.Name, c.Sandbox.ConnectPorts)
		}
		// A secret file curl reads (-H @FILE) is declared for the command
		// that reads it, and lies outside /etc, which every command sees.
		for _, a := range c.Argv {
			file, ok := strings.CutPrefix(a, "@")
			if !ok {
				continue
			}
			if !slices.Contains(c.Sandbox.Read, file) {
				t.Errorf("/%s reads %s but does not declare it in sandbox.read", c.Name, file)
			}
			if strings.HasPrefix(file, "/etc/") {
				t.Errorf("/%s keeps its secret %s under /etc, which every command can read", c.Name, file)
			}
		}
	}
}

// TestExamplesActionUnitsShipped: every relay-action unit an example starts
// is in deploy/systemd.
func TestExamplesActionUnitsShipped(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	for _, f := range files {
		for _, c := range loadExample(t, filepath.Base(f)).Commands {
			for _, a := range c.Argv {
				if !strings.HasPrefix(a, "relay-action-") {
					continue
				}
				if _, err := os.Stat(filepath.Join(systemdDir, a)); err != nil {
					t.Errorf("%s /%s starts %s, which deploy/systemd does not ship: %v", filepath.Base(f), c.Name, a, err)
				}
			}
		}
	}
}
