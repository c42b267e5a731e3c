package mirror

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
)

func TestServerOwner(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		labels      map[string]string
		want        string
	}{
		{"neither", nil, nil, DefaultOwner},
		{"annotation", map[string]string{OwnerKey: "user-a"}, nil, "user-a"},
		{"label", nil, map[string]string{OwnerKey: "user-l"}, "user-l"},
		{"annotation wins over label", map[string]string{OwnerKey: "user-a"}, map[string]string{OwnerKey: "user-l"}, "user-a"},
		{"empty annotation falls through", map[string]string{OwnerKey: ""}, map[string]string{OwnerKey: "user-l"}, "user-l"},
		{"other keys ignored", map[string]string{"example.com/owner": "x"}, map[string]string{"owner": "y"}, DefaultOwner},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newServerConfig("c")
			c.Annotations, c.Labels = tt.annotations, tt.labels
			if got := serverOwner(c); got != tt.want {
				t.Errorf("serverOwner = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConfigUIDOf(t *testing.T) {
	ref := func(apiVersion, kind, uid string, controller bool) metav1.OwnerReference {
		return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: "c", UID: types.UID(uid), Controller: ptr.To(controller)}
	}
	tests := []struct {
		name string
		refs []metav1.OwnerReference
		want string
	}{
		{"no owner", nil, ""},
		{"controlling config", []metav1.OwnerReference{ref("backapp.io/v1alpha1", "BackupConfig", "u1", true)}, "u1"},
		{"another version of the group", []metav1.OwnerReference{ref("backapp.io/v1", "BackupConfig", "u2", true)}, "u2"},
		{"owner but not controller", []metav1.OwnerReference{ref("backapp.io/v1alpha1", "BackupConfig", "u3", false)}, ""},
		{"controller of another kind", []metav1.OwnerReference{ref("backapp.io/v1alpha1", "Agent", "u4", true)}, ""},
		{"same kind, another group", []metav1.OwnerReference{ref("example.com/v1", "BackupConfig", "u5", true)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &backappv1alpha1.BackupRun{ObjectMeta: metav1.ObjectMeta{OwnerReferences: tt.refs}}
			if got := configUIDOf(r); got != tt.want {
				t.Errorf("configUIDOf = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRunRowCountsAndObject(t *testing.T) {
	errs := []backappv1alpha1.RunError{{Message: "a"}, {Path: "/b", Message: "b"}}
	tests := []struct {
		name       string
		status     backappv1alpha1.BackupRunStatus
		wantCount  int64
		wantBucket string
	}{
		{"nothing yet", backappv1alpha1.BackupRunStatus{}, 0, ""},
		{"count beyond the kept errors", backappv1alpha1.BackupRunStatus{Errors: errs, ErrorCount: 70}, 70, ""},
		{"list without a count", backappv1alpha1.BackupRunStatus{Errors: errs}, 2, ""},
		{"stored object", backappv1alpha1.BackupRunStatus{Object: &backappv1alpha1.StoredObject{Bucket: "b", Key: "k", Size: 7}}, 0, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &backappv1alpha1.BackupRun{Status: tt.status}
			row := runRow(r, refs{}, time.Unix(1, 0))
			if row.ErrorCount != tt.wantCount || row.Bucket != tt.wantBucket || len(row.Errors) != len(tt.status.Errors) {
				t.Errorf("runRow: errorCount %d, bucket %q, %d errors; want %d, %q, %d",
					row.ErrorCount, row.Bucket, len(row.Errors), tt.wantCount, tt.wantBucket, len(tt.status.Errors))
			}
		})
	}
}

func TestTombstones(t *testing.T) {
	obj := func(name, uid string) *backappv1alpha1.BackupRun {
		return &backappv1alpha1.BackupRun{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(uid)}}
	}
	key := types.NamespacedName{Namespace: "ns", Name: "a"}
	ts := newTombstones(2)
	at := time.Unix(100, 0)

	if !ts.add(obj("a", "1"), at) || !ts.add(obj("a", "2"), at.Add(time.Second)) {
		t.Fatal("add under the limit refused")
	}
	if ts.add(obj("b", "3"), at) {
		t.Error("add over the limit accepted")
	}
	// The same object again replaces its entry, even at the limit.
	if !ts.add(obj("a", "1"), at.Add(time.Minute)) {
		t.Error("re-adding a held object refused")
	}
	got := ts.of(key)
	if len(got) != 2 || got[0].obj.GetUID() != "1" || !got[0].at.Equal(at.Add(time.Minute)) || got[1].obj.GetUID() != "2" {
		t.Fatalf("of = %+v, want objects 1 (re-added) and 2 in order", got)
	}
	ts.remove(key, "1")
	if got := ts.of(key); len(got) != 1 || got[0].obj.GetUID() != "2" {
		t.Errorf("after remove, of = %+v, want object 2", got)
	}
	// Room again after a removal.
	if !ts.add(obj("b", "3"), at) {
		t.Error("add after a removal refused")
	}
	ts.remove(key, "2")
	ts.remove(types.NamespacedName{Namespace: "ns", Name: "b"}, "3")
	if all := ts.all(); len(all) != 0 {
		t.Errorf("all = %+v after removing everything, want none", all)
	}
}
