package webapp

import (
	"sync"

	toolscache "k8s.io/client-go/tools/cache"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
)

// keyIndex maps API key hashes (hex SHA-256, Agent spec.apiKeyHash) to the
// Agents that hold them. It is fed by the Agent informer, so a key check is
// one map lookup under a read lock: no apiserver call, no list, no copy.
// Rotating or revoking a key changes spec.apiKeyHash; the index follows as
// soon as the watch delivers the change.
type keyIndex struct {
	mu     sync.RWMutex
	byHash map[string]*backappv1alpha1.Agent
}

func newKeyIndex() *keyIndex {
	return &keyIndex{byHash: make(map[string]*backappv1alpha1.Agent)}
}

// lookup returns the Agent holding the key with hash h. The Agent is the
// informer's object: callers must not modify it.
func (k *keyIndex) lookup(h string) (*backappv1alpha1.Agent, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	a, ok := k.byHash[h]
	return a, ok
}

func (k *keyIndex) put(a *backappv1alpha1.Agent) {
	k.mu.Lock()
	defer k.mu.Unlock()
	// Drop any earlier hash of the same agent (a rotation).
	for h, old := range k.byHash {
		if old.UID == a.UID && h != a.Spec.APIKeyHash {
			delete(k.byHash, h)
		}
	}
	if a.Spec.APIKeyHash != "" {
		k.byHash[a.Spec.APIKeyHash] = a
	}
}

func (k *keyIndex) remove(a *backappv1alpha1.Agent) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for h, old := range k.byHash {
		if old.UID == a.UID {
			delete(k.byHash, h)
		}
	}
}

// handler keeps the index in step with the Agent informer.
func (k *keyIndex) handler() toolscache.ResourceEventHandler {
	asAgent := func(obj any) (*backappv1alpha1.Agent, bool) {
		if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		a, ok := obj.(*backappv1alpha1.Agent)
		return a, ok
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if a, ok := asAgent(obj); ok {
				k.put(a)
			}
		},
		UpdateFunc: func(_, obj any) {
			if a, ok := asAgent(obj); ok {
				k.put(a)
			}
		},
		DeleteFunc: func(obj any) {
			if a, ok := asAgent(obj); ok {
				k.remove(a)
			}
		},
	}
}
