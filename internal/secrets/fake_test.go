package secrets

import (
	"sync"

	"github.com/zalando/go-keyring"
)

// fakeKeyring is an in-memory Keyring with injectable failures.
type fakeKeyring struct {
	mu     sync.Mutex
	items  map[string]string // service + "\x00" + user -> secret
	getErr error
	setErr error
	delErr error
	block  chan struct{} // when non-nil, every call waits for it to close
	panicV any           // when non-nil, every call panics with it
	calls  int
}

func newFake() *fakeKeyring { return &fakeKeyring{items: map[string]string{}} }

func (f *fakeKeyring) enter() {
	f.mu.Lock()
	f.calls++
	b, p := f.block, f.panicV
	f.mu.Unlock()
	if b != nil {
		<-b
	}
	if p != nil {
		panic(p)
	}
}

func (f *fakeKeyring) Get(service, user string) (string, error) {
	f.enter()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.getErr != nil {
		return "", f.getErr
	}
	v, ok := f.items[service+"\x00"+user]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

func (f *fakeKeyring) Set(service, user, password string) error {
	f.enter()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.setErr != nil {
		return f.setErr
	}
	f.items[service+"\x00"+user] = password
	return nil
}

func (f *fakeKeyring) Delete(service, user string) error {
	f.enter()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.delErr != nil {
		return f.delErr
	}
	k := service + "\x00" + user
	if _, ok := f.items[k]; !ok {
		return keyring.ErrNotFound
	}
	delete(f.items, k)
	return nil
}
