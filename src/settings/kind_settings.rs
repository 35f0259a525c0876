//! An instance's kind-specific settings as config holds them: a value of
//! the kind's own `Settings` type, which config neither names nor reads.
//!
//! Config sits below the kinds: it reads the keys every instance has and
//! hands the instance's section to a reader it is given (the registry in
//! `service::registry`, above it), which returns the kind's settings boxed
//! here. Whoever knows the kind gets its type back with [`AnySettings::get`].
//!
//! Not here: reading any kind's keys, or knowing which kinds exist.

use std::any::Any;
use std::fmt;

/// What a kind's settings type offers to the floors below the kinds.
pub trait KindSettings: Any + fmt::Debug + Send + Sync {
    /// The program an instance runs, when it runs one (stdio): what
    /// `stdio_allow` is checked against for an instance added from the
    /// dashboard.
    fn program(&self) -> Option<&str> {
        None
    }
}

/// Clone and compare through the box: implemented for every
/// [`KindSettings`] that is `Clone + PartialEq`.
trait Erased: KindSettings {
    fn clone_box(&self) -> Box<dyn Erased>;
    fn eq_dyn(&self, other: &dyn Erased) -> bool;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: KindSettings + Clone + PartialEq> Erased for T {
    fn clone_box(&self) -> Box<dyn Erased> {
        Box::new(self.clone())
    }

    fn eq_dyn(&self, other: &dyn Erased) -> bool {
        other.as_any().downcast_ref::<T>() == Some(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// One instance's kind-specific settings, of whichever kind it is.
pub struct AnySettings(Box<dyn Erased>);

impl AnySettings {
    pub fn new<T: KindSettings + Clone + PartialEq>(settings: T) -> Self {
        AnySettings(Box::new(settings))
    }

    /// The settings as `T`, if they are of that kind.
    pub fn get<T: KindSettings>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref::<T>()
    }

    /// The settings as `T`, if they are of that kind, for changing them.
    pub fn get_mut<T: KindSettings>(&mut self) -> Option<&mut T> {
        self.0.as_any_mut().downcast_mut::<T>()
    }

    /// See [`KindSettings::program`].
    pub fn program(&self) -> Option<&str> {
        self.0.program()
    }
}

impl Clone for AnySettings {
    fn clone(&self) -> Self {
        AnySettings(self.0.clone_box())
    }
}

impl PartialEq for AnySettings {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_dyn(other.0.as_ref())
    }
}

impl Eq for AnySettings {}

impl fmt::Debug for AnySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct A(u8);
    impl KindSettings for A {}

    #[derive(Debug, Clone, PartialEq)]
    struct B(u8);
    impl KindSettings for B {
        fn program(&self) -> Option<&str> {
            Some("/bin/b")
        }
    }

    #[test]
    fn typed_back_and_compared_by_kind_and_value() {
        let mut a = AnySettings::new(A(1));
        assert_eq!(a.get::<A>(), Some(&A(1)));
        assert!(a.get::<B>().is_none());
        a.get_mut::<A>().expect("an A").0 = 2;
        assert_eq!(a, AnySettings::new(A(2)));
        assert_ne!(a, AnySettings::new(A(1)));
        assert_ne!(AnySettings::new(A(2)), AnySettings::new(B(2)));
        assert_eq!(a.clone(), a);
        assert_eq!(format!("{a:?}"), "A(2)");
        assert_eq!(a.program(), None);
        assert_eq!(AnySettings::new(B(0)).program(), Some("/bin/b"));
    }
}
