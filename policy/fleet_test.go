package policy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFleetConfig(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "hub_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hub", "-f", key).CombinedOutput(); err != nil {
		t.Skipf("ssh-keygen: %v %s", err, out)
	}
	hostKey := filepath.Join(dir, "host")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@nas", "-f", hostKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	fp, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", hostKey+".pub").Output()
	if err != nil {
		t.Fatal(err)
	}
	wantFP := strings.Fields(string(fp))[1]
	pubLine := strings.TrimSpace(string(pub))
	khLine := "[nas.lan]:2222 " + strings.Join(strings.Fields(pubLine)[:2], " ")
	src := `auth: {owner_id: 1}
state_dir: ` + dir + `
audit: {dir: ` + dir + `}
fleet:
  parallel: 2
  persist: 0s
hosts:
  nas:
    address: relay@nas.lan
    port: 2222
    host_key: "` + pubLine + `"
    identity: ` + key + `
  web1:
    address: relay@192.0.2.1
    host_key: "` + khLine + `"
    identity: ` + key + `
    timeout: 5s
    max_output: 1MiB
  web2:
    address: "relay@[2001:db8::2]"
    host_key: "` + pubLine + `"
    identity: ` + key + `.pub
    agent: /run/relay/agent.sock
groups:
  web: [web1, web2]
commands:
  up: {argv: [/usr/bin/true]}
  down: {argv: [/usr/bin/true], hub: false}
`
	cfg, err := Parse("hub.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Fleet
	if f.Parallel != 2 || f.MaxCalls != 16 || f.Timeout != time.Minute || f.Persist != 0 || f.SSH != "/usr/bin/ssh" || f.AliveCount != 3 {
		t.Errorf("got fleet %+v, want parallel 2, persist 0 and the defaults", f)
	}
	if len(cfg.Hosts) != 3 || cfg.Hosts[0].Name != "nas" || cfg.Hosts[2].Name != "web2" {
		t.Fatalf("got hosts %v, want nas, web1, web2 in file order", cfg.Hosts)
	}
	nas, web1, web2 := cfg.Host("nas"), cfg.Host("web1"), cfg.Host("web2")
	if nas.User != "relay" || nas.Address != "nas.lan" || nas.Port != 2222 || nas.Timeout != time.Minute || nas.MaxOutput != 16<<20 {
		t.Errorf("got nas %+v", nas)
	}
	if nas.Fingerprint() != wantFP || web1.Fingerprint() != wantFP {
		t.Errorf("got fingerprints %s, %s; ssh-keygen says %s", nas.Fingerprint(), web1.Fingerprint(), wantFP)
	}
	if web1.HostKey != nas.HostKey || strings.Contains(web1.HostKey, "nas.lan") || nas.KeyType() != "ssh-ed25519" {
		t.Errorf("the known_hosts line and the .pub line pin different keys: %q, %q", web1.HostKey, nas.HostKey)
	}
	if web1.Port != 22 || web1.Timeout != 5*time.Second || web1.MaxOutput != 1<<20 {
		t.Errorf("got web1 %+v", web1)
	}
	if web2.Address != "2001:db8::2" || web2.Agent == "" {
		t.Errorf("got web2 %+v", web2)
	}
	if g := cfg.Group("web"); g == nil || strings.Join(g.Hosts, ",") != "web1,web2" {
		t.Errorf("got group %+v", g)
	}
	if !cfg.Lookup("up").Hub || cfg.Lookup("down").Hub {
		t.Error("hub: want true by default and false where the file says so")
	}
	// A key file others can read is refused at load, not at the first call.
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse("hub.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("got %v, want the world-readable key refused", err)
	}
}

func TestMemberNeedsNoOwner(t *testing.T) {
	base := "state_dir: /var/lib/relay\naudit: {dir: /var/log/relay}\ncommands:\n  up: {argv: [/usr/bin/true]}\n"
	if _, err := Parse("member.yaml", []byte("member: {}\n"+base)); err != nil {
		t.Errorf("a member's file without owner_id: %v", err)
	}
	if _, err := Parse("bot.yaml", []byte(base)); err == nil || !strings.Contains(err.Error(), "owner_id is required") {
		t.Errorf("got %v, want owner_id required without member:", err)
	}
	cfg, err := Parse("member.yaml", []byte("member: {hub_keys: [\"SHA256:fvCffOV2AHxv8pbq+ywNmYXTyivoBe9Ei7RnJtNSims\"]}\n"+base))
	if err != nil || cfg.Member == nil || len(cfg.Member.HubKeys) != 1 {
		t.Errorf("got %+v, %v; want one hub key", cfg, err)
	}
}
