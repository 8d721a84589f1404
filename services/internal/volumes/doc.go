// Package volumes is the storage plane's control side (DESIGN.md "The
// storage plane"): docker's named and anonymous volumes, kept as records
// in the store (its own slice of the Store interface, Store) with their
// data as directories on the deployment's shared file system, the one
// every function instance has mounted at proto.VolumesRoot.
//
// A volume's record lists the containers using it (Users), acquired when
// a container is created and released when it is removed, each in one
// store transaction; removing a volume marks it in the same kind of
// transaction, so "in use" is decided race-free against container create
// and rm, also across control planes sharing the store. Its data is
// deleted through Data: the Cloud Storage client on the bucket (package
// volumes/gcs), or a directory the control plane has mounted (an NFS
// share, package volumes/localfs).
//
// The directory of volume NAME in namespace NS is NS/NAME under the root;
// a volume being removed refuses new users until its data is gone, so a
// volume created again under its name never sees old files.
package volumes
